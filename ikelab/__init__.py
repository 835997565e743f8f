"""ikelab: step through real IKE exchanges between two peers and watch every value they compute."""

__version__ = "0.1.0"
