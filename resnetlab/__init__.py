"""resnetlab: rebuild the figures and tables of the two ResNet papers by really training.

Modules, one job each: :mod:`~resnetlab.models` (every network), :mod:`~resnetlab.counting`
(parameters and FLOPs), :mod:`~resnetlab.paper` (the papers' numbers), :mod:`~resnetlab.data`
(CIFAR on a device), :mod:`~resnetlab.train` (the papers' recipe), :mod:`~resnetlab.runs`
(recorded runs), :mod:`~resnetlab.analysis`, :mod:`~resnetlab.plots`, :mod:`~resnetlab.plots.diagrams`.
"""

__version__ = "0.1.0"
