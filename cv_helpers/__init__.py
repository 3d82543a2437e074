"""cv_helpers: the CV1 course project's datasets, networks, training loop and figures, under the notebooks.

The course core, in reading order:
    data.py        CIFAR100_loader, STL10_Dataset (the five classes, relabelled) and the prepared-array format
    transforms.py  the training and test transforms, unnormalize
    models.py      the Network contract, TwoLayerNet, ConvNet (LeNet-5) and the improved nets
    train.py       train, valid, valid_class, initialize_optimizer; then fit, which trains through train
    finetune.py    Q2: the fine-tuning surgery, pooled features, linear probe and k-NN accuracy
    viz.py         the figures, t-SNE included
The speed path (fast_loader.py, whitening.py, tta.py) and small support modules sit beside them. The workbench
(cv_helpers/workbench/: run folders, presets, sweeps, the main job, the command line) records and publishes
trainings; the core never imports it. docs/package.md lists every module.
"""
