"""EDM preconditioning and loss, Karras/Euler sampling, windowed prediction of long sequences."""
