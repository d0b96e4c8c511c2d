"""Moodle's report builder: reading rows (:mod:`.parsing`), the zone its times are written in
(:mod:`.timezone`, :mod:`.calibration`) and the conditions that hide rows (:mod:`.conditions`)."""
