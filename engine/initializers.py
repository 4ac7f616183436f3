"""Weight initialisations: name -> standard deviation of N(0, std^2) for a layer of fan-in d.

Biases and beta start at 0, gamma at 1. Draws are float64 from the network's seeded
generator, then cast, so a seed gives the same weights in float32 and float64.
"""
import math

INITS = {
    "he": lambda d, sigma: math.sqrt(2.0 / d),       # He et al. 2015, for ReLU layers
    "xavier": lambda d, sigma: math.sqrt(1.0 / d),   # Xavier/Glorot's 1/sqrt(fan-in) form
    "gaussian": lambda d, sigma: sigma,              # fixed sigma, as in the init study
}


def init_std(init, fan_in, sigma=None):
    """Standard deviation of the weights of a layer with fan_in inputs."""
    return INITS[init](fan_in, sigma)
