"""Frame-to-frame tracking (DLC's ``core/trackingutils`` and ``convert_detections2tracklets``)."""
