"""nasdip_jax: Deep Image Prior restoration and NAS for DIP in JAX/Flax."""

import setuptools

setuptools.setup(
    name="nasdip_jax",
    version="0.1.0",
    description="Deep Image Prior restoration and neural architecture search (NAS-DIP, ISNAS-DIP) "
                "in JAX/Flax",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["nasdip_jax", "nasdip_jax.*"]),
    package_data={"nasdip_jax": ["assets/*.png", "space/lists/*"]},
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.10.0",
        "flax>=0.12.0",
        "optax>=0.2.5",
        "chex>=0.1.90",
        "dm-pix>=0.4.3",
        "numpy>=1.26",
        "scipy>=1.11",
        "absl-py>=2.1",
        "ml-collections>=1.0",
        "pillow>=10.0",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "scikit-image>=0.22",  # NLM, TV and (with PyWavelets) the noise-level estimate
        "PyWavelets>=1.4",
        "orbax-checkpoint>=0.11",
    ],
    extras_require={
        # training sets registered as TFDS datasets (imaging/tfds_image_set.py); no TensorFlow
        "tfds": ["tensorflow-datasets>=4.9.7", "array-record>=0.5", "importlib_resources"],
        "test": ["pytest>=8", "pytest-xdist>=3.5", "tensorflow-datasets>=4.9.7", "array-record>=0.5",
                 "importlib_resources", "bm3d>=4.0.3"],
        # BM3D / CBM3D baselines (baselines/denoisers.py): free for non-commercial use only
        "bm3d": ["bm3d>=4.0.3"],
        "torch": ["torch>=2.0"],  # benchmarks/dip_speed.py's interleaved reference timing only
    },
    license="Apache-2.0",
)
