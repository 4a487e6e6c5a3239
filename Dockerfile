# StarVid Studio web app on port 7860 (CPU by default; the tiny model runs anywhere).
#   docker build -t starvid-studio .
#   docker run --rm -p 7860:7860 starvid-studio            # then open http://localhost:7860
# GPU: docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t starvid-studio .
#      docker run --rm --gpus all -p 7860:7860 -v hf-cache:/home/user/.cache/huggingface starvid-studio
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False

# Spaces-style unprivileged user (uid 1000) owning the app and its caches.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# Torch first from the chosen index (CPU wheels by default, no multi-GB CUDA download), then the
# pinned requirements (pip keeps that torch since the version matches). llama-cpp-python builds
# from source, so a compiler is present for the install and removed in the same layer (libgomp1,
# which the built library links, is installed explicitly so the purge keeps it).
COPY requirements.txt .
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake libgomp1 \
    && pip install "torch==2.13.0" --index-url "${TORCH_INDEX}" \
    && pip install -r requirements.txt \
    && apt-get purge -y build-essential cmake && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

COPY --chown=user:user . .
USER user

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"
CMD ["python", "app.py"]
