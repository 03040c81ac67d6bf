"""`bcai demo`: the main job of bcai, end to end on a local devnet.

- `run.py`: boots a 4-validator devnet (separate processes), funds and registers three
  workers and two evaluators, posts a federated job that trains a small CNN on
  scikit-learn's digits, lets the agents run it, and reports accuracy, the model CID, the
  job's blocks and the payouts (fee and the 90 / 5 / 5 split).
- `digits_cnn.yaml`: the job's BML document.
"""
