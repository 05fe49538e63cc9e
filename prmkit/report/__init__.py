"""The report stage: one report.md (with PNG plots) over the outputs of a whole chain of runs, headed by a
paragraph, computed from the data, on whether PRM-guided selection beat majority vote at the same N."""
