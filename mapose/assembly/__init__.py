"""Assembly of body-part detections into animals (DeepLabCut's ``inferenceutils``).

:class:`~mapose.assembly.assembler.Assembler` runs DLC's per-frame algorithm in compiled
code; :mod:`~mapose.assembly.model` holds the ``Joint``/``Link``/``Assembly`` data model
and :mod:`~mapose.assembly.evaluation` the OKS / mAP helpers.
"""
