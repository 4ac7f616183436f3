"""Reading run logs back with the tools' own readers: TensorBoard's EventAccumulator and its
HParams plugin data (the `tensorboard` package, which needs no TensorFlow)."""


def read_events(logdir):
    """TensorBoard's EventAccumulator of the run in logdir, loaded, every event kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0,
                                                          "tensors": 0})
    return events.Reload()


def hparams_of(events):
    """(the experiment's hparam names, its metric tags, the session's hparams {name: value})
    of the HParams plugin data in a run's events."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(blob)
            for tag, blob in content.items()}
    experiment = data["_hparams_/experiment"].experiment
    start = data["_hparams_/session_start_info"].session_start_info
    values = {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()}
    return ({h.name for h in experiment.hparam_infos},
            {m.name.tag for m in experiment.metric_infos}, values)
