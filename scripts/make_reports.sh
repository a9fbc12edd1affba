#!/usr/bin/env bash
# Regenerate the committed reports/ folder (offline but for the nudenet wheel, which pip fetches from
# PyPI once and then takes from its cache; deterministic for a given seed).
# Usage: bash scripts/make_reports.sh          (after bash scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
WS=.venv/bin/weightstats
rm -rf reports.new && mkdir reports.new
# Trained built-in models, their untrained twins, and the untrained torchvision ResNet-50 (null case).
$WS fit digits-resnet digits-resnet:none digits-vae digits-vae:none resnet50:none --out reports.new
# Channel scale mixtures vs genuinely heavy tails: the same VAE with each output channel standardized.
$WS fit digits-vae --per-channel --out reports.new/digits-vae-per-channel
# The opt-in mixture families beside the four defaults: trained vs untrained (uniform init) VAE.
$WS fit digits-vae digits-vae:none --families +mixtures --out reports.new/mixtures
$WS compare digits-vae digits-vae:none --out reports.new/compare-digits-vae-trained-vs-untrained
$WS compare digits-resnet digits-resnet:none --out reports.new/compare-digits-resnet-trained-vs-untrained
$WS compare digits-vae --out reports.new/compare-digits-vae-encoder-vs-decoder
# A real pretrained network: nudenet's YOLOv8n (320n.onnx; its ONNX export folds BatchNorm into the
# convolutions), plain and with each output channel standardized. The wheel is installed without its
# dependencies into a temporary folder: only the ONNX file is read, no nudenet code runs.
NUDENET=$(mktemp -d)
.venv/bin/python -m pip install --quiet --no-deps --target "$NUDENET" nudenet==3.4.2
$WS fit "$NUDENET/nudenet/320n.onnx" --out reports.new/nudenet-320n
$WS fit "$NUDENET/nudenet/320n.onnx" --per-channel --out reports.new/nudenet-320n-per-channel
rm -rf "$NUDENET"
# The other question: is a VAE's latent space Gaussian? Aggregate posterior vs the prior N(0, I).
$WS latent digits-vae --out reports.new/latent/digits-vae
$WS latent digits-vae:none --out reports.new/latent/digits-vae-none
rm -rf reports && mv reports.new reports
echo "reports/ regenerated"
