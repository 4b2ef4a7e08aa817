"""The baseline CNN as a torch nn.Module, with the same parameter names and
layout as src/nn/models/cnn.c (state_dict names equal the C parameter table).

Layout (width w = 32 by default, input (N, C, S, S)):
  stages.i (i = 0..3), channels w * 2**i:
    stages.i.0 = ConvBNReLU(conv3x3 pad 1 no bias, BN, ReLU)
    stages.i.1 = ConvBNReLU
    stages.i.2 = MaxPool2d(2, 2)
  global average pool -> (N, 8w)
  dropout(p) if p > 0
  fc = Linear(8w, classes)
"""
import torch
import torch.nn as nn


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.relu = nn.ReLU(inplace=True)


class BaselineCNN(nn.Module):
    def __init__(self, in_ch=3, classes=10, width=32, dropout=0.0):
        super().__init__()
        stages = []
        cin = in_ch
        for i in range(4):
            cout = width * 2 ** i
            stages.append(nn.Sequential(ConvBNReLU(cin, cout), ConvBNReLU(cout, cout),
                                        nn.MaxPool2d(2, 2)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(cin, classes)
        # Same init as the C builder: kaiming-normal fan_out for convs, BN 1/0,
        # fc as torch's Linear default.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        for s in self.stages:
            x = s(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.drop(x))
