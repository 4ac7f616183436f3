"""Finding hyper-parameters on top of training runs: the learning-rate range test
(`range_test`, its analysis in `cifar_engine.range_analysis`) and the coarse-to-fine
search (`search`)."""
