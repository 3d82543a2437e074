"""cv_helpers: the CV1 course project's datasets, networks, training loop and figures, under the notebooks.

Read the course's part in this order:
    data.py        CIFAR100_loader, STL10_Dataset and the prepared-array format
    transforms.py  the training and test transforms, unnormalize
    models.py      the Network contract, TwoLayerNet, ConvNet (LeNet-5) and the improved nets
    train.py       train, valid, valid_class, initialize_optimizer; then fit, which trains through train
    finetune.py    Q2's pooled features, linear probe and k-NN accuracy
    viz.py         the figures, t-SNE included
The other modules run, record and publish trainings (run folders, presets, sweeps, the main job, the command line);
docs/package.md lists them all.
"""
