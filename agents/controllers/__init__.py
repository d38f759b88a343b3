"""RL controllers against the twin: training from YAML configs (``training``) and evaluation of a
policy against the rule-based and random baselines (``policy_eval``)."""
