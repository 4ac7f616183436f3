"""A network and what it needs to predict: its shape and settings (`spec`), the trainable
network over flat slabs (`network`), and its file (`npz`: model.npz, best.npz)."""
