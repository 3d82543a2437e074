"""The workbench: what records, reuses and publishes trainings, beside the course core (which never imports it).

    presets.py     named recipes: the seed's protocols and the improved ones
    experiment.py  one run: its data, network, run folder, and run_state (reuse / resume / retrain / train)
    runs.py        run folders, locks, config.json and metrics.json
    sweep.py       one-change-at-a-time sweeps and the verdicts on the seed's claims
    lr_finder.py   the learning-rate range test
    tune.py        Optuna studies
    strategies.py  Q2's fine-tuning strategies as presets
    results.py     the results tables read from the run files
    notebooks.py   the main job: each notebook's runs, figures and tables, executed headless
    report.py      report/report.md from the executed notebooks
    widgets.py     the Q1.4 training panel
    cli.py         python -m cv_helpers.workbench ...
"""
