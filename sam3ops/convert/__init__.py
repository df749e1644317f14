"""The convert stage: other precisions and formats of a weights folder, each checked against fp32."""
