"""The export stage: labelled records into the layouts other tools train on (TRL, OpenRLHF, Hugging Face datasets)."""
