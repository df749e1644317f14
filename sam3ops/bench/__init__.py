"""The benchmark stage: latency, throughput, memory and accuracy per runtime, precision and batch.

Measurement (:mod:`config`, :mod:`timers`, :mod:`memory`, :mod:`workload`, :mod:`runner`,
:mod:`results`) imports torch but never mlflow, so it runs on a bare GPU host and writes JSON;
:mod:`track` logs results to MLflow, :mod:`stage` is the tracked stage, :mod:`charts` draws results,
:mod:`compare` reads runs back; :mod:`metrics` names what is logged. Nothing is imported here, so
reading :mod:`metrics` or :mod:`config` never imports torch.
"""
