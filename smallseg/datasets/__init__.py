from .img_labels_dataset import ImgLabelsSegDataset
from .transforms import RandomBrightnessContrast, RandomGaussianNoise

__all__ = ['ImgLabelsSegDataset', 'RandomBrightnessContrast', 'RandomGaussianNoise']
