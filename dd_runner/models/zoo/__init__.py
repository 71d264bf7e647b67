"""The architectures of the dataset-distillation benchmarks beyond LeNet and ConvNet (DC / DSA / DM report on
MLP, ConvNet, LeNet, AlexNet, VGG11 and ResNet-18; MTT on ConvNet, AlexNet, VGG11 and ResNet-18), written
after the descriptions in Zhao et al. 2021's code: mlp, alexnet, vgg11, resnet18, one builder each (registered
in `dd_runner.models.ARCHS`), and `common` (normalisation layers, the batch-norm learner, the builder)."""
