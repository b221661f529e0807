"""Dataset converters behind the scripts in datasets/ (COCO, colour masks, splitting)."""
from .coco import category_map, coco_to_masks, load_coco, masks_to_coco, parse_mapping
from .palette import convert_rgb_folder, index_to_rgb, parse_palette, rgb_to_index
from .split import assign, split_dataset

__all__ = ['assign', 'category_map', 'coco_to_masks', 'convert_rgb_folder', 'index_to_rgb',
           'load_coco', 'masks_to_coco', 'parse_mapping', 'parse_palette', 'rgb_to_index',
           'split_dataset']
