"""Export the five torchvision classifiers of issue 12 with real PyTorch (Debian's python3-torch /
python3-torchvision; run with /usr/bin/python3): OUT/NAME.onnx (opset 13, dynamic batch, random
weights from torch.manual_seed(0): torchvision cannot download weights here) and OUT/NAME.input.npy
(one 1x3x224x224 normal image). Usage: /usr/bin/python3 scripts/export-torchvision.py OUT [NAME...].
The files are tens to hundreds of MB: never committed; the long suite writes them to a temp dir."""
import os
import sys

import numpy as np
import torch
import torchvision.models as tvm

MODELS = {
    'resnet18': tvm.resnet18,
    'mobilenet_v2': tvm.mobilenet_v2,
    'squeezenet1_1': tvm.squeezenet1_1,
    'vgg11': tvm.vgg11,
    'densenet121': tvm.densenet121,
}

out = sys.argv[1]
names = sys.argv[2:] or list(MODELS)
os.makedirs(out, exist_ok=True)
for name in names:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    x = torch.randn(1, 3, 224, 224)
    np.save(os.path.join(out, name + '.input.npy'), x.numpy())
    torch.onnx.export(model, x, os.path.join(out, name + '.onnx'), opset_version=13,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    print(name, flush=True)
