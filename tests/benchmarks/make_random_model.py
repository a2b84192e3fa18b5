# Copied from ../shared/bench/make_random_model.py (issue 12) so the benchmarks run where that folder is absent; keep in step.
"""Write an open_clip 'local-dir:' model folder with random weights for architecture NAME.

Usage: python make_random_model.py NAME OUT_DIR
Speed does not depend on the weights' values, so this stands in for a downloaded
checkpoint when timing encoders on a machine that cannot reach the model hub.
"""
import json, os, sys
import open_clip, torch
from open_clip.factory import get_model_config
from safetensors.torch import save_file

name, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
model, _, pre = open_clip.create_model_and_transforms(name, pretrained=None)
cfg = {"model_cfg": get_model_config(name),
       "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
                          "interpolation": "bicubic", "resize_mode": "shortest"}}
json.dump(cfg, open(os.path.join(out, "open_clip_config.json"), "w"), indent=1)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, "open_clip_model.safetensors"))
print("wrote", out)
