from .img_labels_dataset import ImgLabelsSegDataset

__all__ = ['ImgLabelsSegDataset']
