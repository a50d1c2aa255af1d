"""Captum attributions: which parts of one input made the model decide, and by how much.

Pictures get Saliency, Integrated Gradients, GradientShap, DeepLift, Occlusion, Grad-CAM and
Guided Grad-CAM (any gradient method optionally smoothed by SmoothGrad through ``NoiseTunnel``),
the rest of the CAM family on a conv stage (Grad-CAM++, HiResCAM, XGrad-CAM, LayerCAM,
Score-CAM, Ablation-CAM, Eigen-CAM: written by hand in ``cams``) and, on a vision transformer,
attention rollout and Grad-CAM on its patch tokens (by hand in ``patches``); sentences get Layer
Integrated Gradients and gradient × embedding on the word embeddings, and occlusion word by word.
``Settings`` is configured once and every call reads it; results are CPU numpy in the input's
own layout, ready for ``viz/``. ``randomized_copy`` gives the model with its weights re-drawn,
for the sanity check of Adebayo et al. (2018): a faithful map changes, an edge detector's not.

Every call runs the model in eval mode and gives it back as found (``explain.model_guard``):
mode restored, no hook or DeepLift scratch tensor left behind, even when something raises.

The rooms: ``methods`` (the table of methods, ``Settings``, ``Attribution``, what a model
offers), ``calls`` (``attribute`` and the checks), ``images`` and ``sentences`` (each input
kind's computation), ``sanity`` (the randomised copy, Spearman and SSIM of two maps), ``cascade``
(the cascading randomisation, layer by layer from the output back).
"""
from .calls import (NO_CLASSIFIER, NO_IMAGE_CLASSIFIER, NOT_EXPLAINABLE, attribute, attribute_many,
                    predicted_class)
from .cascade import Cascade, CascadeLayer, cascade_layers, cascading_copies, cascading_randomisation
from .images import image_baseline
from .methods import (IMAGE_METHODS, TEXT_METHODS, Attribution, Method, Settings, available_methods,
                      gradcam_layers)
from .sanity import map_similarity, map_ssim, randomized_copy

__all__ = ["Cascade", "CascadeLayer", "IMAGE_METHODS", "NOT_EXPLAINABLE", "NO_CLASSIFIER", "NO_IMAGE_CLASSIFIER",
           "TEXT_METHODS", "Attribution", "Method", "Settings", "attribute", "attribute_many", "available_methods",
           "cascade_layers", "cascading_copies", "cascading_randomisation", "gradcam_layers", "image_baseline",
           "map_similarity", "map_ssim", "predicted_class", "randomized_copy"]
