from .brightness_contrast import RandomBrightnessContrast
from .gaussian_noise import RandomGaussianNoise

__all__ = ['RandomBrightnessContrast', 'RandomGaussianNoise']
