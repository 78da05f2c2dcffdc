"""Stability analysis: linear and nonlinear recursions, and the same questions asked of any
recurrent model — spectra, Jacobian products, gradients through time, Lyapunov exponents."""

from .jacobians import (
                        jacobian_sequence,
                        largest_lyapunov_brute_force,
                        lyapunov,
                        product_norms,
                        step_jacobian,
)
from .linear import linear_response, multitap_response, multitap_roots, spectrum
from .models import (
                        as_rnnlab,
                        gate_saturation,
                        gradient_norms,
                        jacobian_norms,
                        layer_trajectories,
                        lyapunov_spectrum,
                        memory_response,
                        recurrent_spectra,
)
from .scalar import classify, recursion, sweep

__all__ = [
    "spectrum", "linear_response", "multitap_roots", "multitap_response", "recursion",
    "classify", "sweep", "step_jacobian", "jacobian_sequence", "product_norms", "lyapunov",
    "largest_lyapunov_brute_force", "as_rnnlab", "recurrent_spectra", "layer_trajectories",
    "jacobian_norms", "lyapunov_spectrum", "gradient_norms", "gate_saturation",
    "memory_response",
]
