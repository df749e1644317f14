"""Which ONNX operators TensorRT's ONNX parser supports, and for which input types: data, not code.

Source: onnx/onnx-tensorrt, ``docs/operators.md``, "TensorRT 10.15 supports operators in the
inclusive range of opset 9 to opset 24" (TensorRT 10.15 GA, released 2026-02-02). One line per
operator of that table: the name, then ``N`` where it says unsupported, else the types its
"Supported Types" column lists. The "Restrictions" column (e.g. "``axes`` must be an initializer")
is not encoded: a graph that passes this table can still be refused by the parser for a
restriction. Update the table, the version and the opset range together.
"""

from __future__ import annotations

TRT_VERSION = "10.15"
OPSET_RANGE = (9, 24)

_TABLE = """
Abs FP32 FP16 BF16 INT32 INT64
Acos FP32 FP16 BF16
Acosh FP32 FP16 BF16
Add FP32 FP16 BF16 INT32 INT64
AffineGrid N
And BOOL
ArgMax FP32 FP16 BF16 INT32 INT64
ArgMin FP32 FP16 BF16 INT32 INT64
Asin FP32 FP16 BF16
Asinh FP32 FP16 BF16
Atan FP32 FP16 BF16
Atanh FP32 FP16 BF16
Attention FP32 FP16 BF16 INT8 FP8
AveragePool FP32 FP16 BF16
BatchNormalization FP32 FP16 BF16
Bernoulli N
BitShift N
BitwiseAnd N
BitwiseNot N
BitwiseOr N
BitwiseXor N
BlackmanWindow FP32 FP16
Cast FP32 FP16 BF16 INT32 INT64 UINT8 BOOL
CastLike FP32 FP16 BF16 INT32 INT64 UINT8 BOOL
Ceil FP32 FP16 BF16
Col2Im N
Celu FP32 FP16 BF16
CenterCropPad N
Clip FP32 FP16 BF16
Compress N
Concat FP32 FP16 BF16 INT32 INT64 BOOL
ConcatFromSequence N
Constant FP32 FP16 BF16 FP8 FP4 INT4 INT32 INT64 BOOL
ConstantOfShape FP32 FP16 BF16 FP8 FP4 INT4 INT32 INT64 BOOL
Conv FP32 FP16 BF16
ConvInteger N
ConvTranspose FP32 FP16 BF16
Cos FP32 FP16 BF16
Cosh FP32 FP16 BF16
CumSum FP32 FP16 BF16
DFT N
DeformConv FP32 FP16
DepthToSpace FP32 FP16 BF16 INT32 INT64
DequantizeLinear INT8 FP8 FP4 INT4
Det N
Div FP32 FP16 BF16 INT32 INT64
Dropout FP32 FP16 BF16
DynamicQuantizeLinear N
Einsum FP32 FP16 BF16
Elu FP32 FP16 BF16
Equal FP32 FP16 BF16 INT32 INT64
Erf FP32 FP16 BF16
Exp FP32 FP16 BF16
Expand FP32 FP16 BF16 INT32 INT64 BOOL
EyeLike FP32 FP16 BF16 INT32 INT64 BOOL
Flatten FP32 FP16 BF16 INT32 INT64 BOOL
Floor FP32 FP16 BF16
Gather FP32 FP16 BF16 INT32 INT64 BOOL
GatherElements FP32 FP16 BF16 INT32 INT64 BOOL
GatherND FP32 FP16 BF16 INT32 INT64 BOOL
Gelu FP32 FP16 BF16 INT8 INT32 INT64
Gemm FP32 FP16 BF16
GlobalAveragePool FP32 FP16 BF16
GlobalLpPool FP32 FP16 BF16
GlobalMaxPool FP32 FP16 BF16
Greater FP32 FP16 BF16 INT32 INT64
GreaterOrEqual FP32 FP16 BF16 INT32 INT64
GridSample FP32 FP16
GroupNormalization FP32 FP16 BF16
GRU FP32 FP16 BF16
HammingWindow FP32 FP16
HannWindow FP32 FP16
HardSigmoid FP32 FP16 BF16
HardSwish FP32 FP16 BF16
Hardmax FP32 FP16 BF16
Identity FP32 FP16 BF16 INT32 INT64 BOOL
If FP32 FP16 BF16 INT32 INT64 BOOL
ImageScaler FP32 FP16 BF16
ImageDecoder N
InstanceNormalization FP32 FP16 BF16
IsInf FP32 FP16 BF16
IsNaN FP32 FP16 BF16 INT32 INT64
LayerNormalization FP32 FP16 BF16
LeakyRelu FP32 FP16 BF16
Less FP32 FP16 BF16 INT32 INT64
LessOrEqual FP32 FP16 BF16 INT32 INT64
Log FP32 FP16 BF16
LogSoftmax FP32 FP16 BF16
Loop FP32 FP16 BF16 INT32 INT64 BOOL
LRN FP32 FP16 BF16
LSTM FP32 FP16 BF16
LpNormalization FP32 FP16 BF16
LpPool FP32 FP16 BF16
MatMul FP32 FP16 BF16
MatMulInteger N
Max FP32 FP16 BF16 INT32 INT64
MaxPool FP32 FP16 BF16
MaxRoiPool N
MaxUnpool N
Mean FP32 FP16 BF16 FP8 INT32 INT64
MeanVarianceNormalization FP32 FP16 BF16
MelWeightMatrix N
Min FP32 FP16 BF16 INT32 INT64
Mish FP32 FP16
Mod FP32 FP16 BF16 INT32 INT64
Mul FP32 FP16 BF16 INT32 INT64
Multinomial N
Neg FP32 FP16 BF16 INT32 INT64
NegativeLogLikelihoodLoss N
NonMaxSuppression FP32 FP16
NonZero FP32 FP16
Not BOOL
OneHot FP32 FP16 BF16 INT32 INT64 BOOL
Optional N
OptionalGetElement N
OptionalHasElement N
Or BOOL
Pad FP32 FP16 BF16 INT32 INT64
ParametricSoftplus FP32 FP16 BF16
Pow FP32 FP16 BF16 INT32 INT64
PRelu FP32 FP16 BF16
QLinearConv N
QLinearMatMul N
QuantizeLinear FP32 FP16 BF16
RandomNormal FP32 FP16 BF16
RandomNormalLike FP32 FP16 BF16
RandomUniform FP32 FP16 BF16
RandomUniformLike FP32 FP16 BF16
Range FP32 FP16 BF16 INT32 INT64
Reciprocal FP32 FP16 BF16
ReduceL1 FP32 FP16 BF16 INT32 INT64
ReduceL2 FP32 FP16 BF16 INT32 INT64
ReduceLogSum FP32 FP16 BF16 INT32 INT64
ReduceLogSumExp FP32 FP16 BF16 INT32 INT64
ReduceMax FP32 FP16 BF16 INT32 INT64
ReduceMean FP32 FP16 BF16 INT32 INT64
ReduceMin FP32 FP16 BF16 INT32 INT64
ReduceProd FP32 FP16 BF16 INT32 INT64
ReduceSum FP32 FP16 BF16 INT32 INT64
ReduceSumSquare FP32 FP16 BF16 INT32 INT64
RegexFullMatch N
Relu FP32 FP16 BF16 INT32 INT64
Reshape FP32 FP16 BF16 INT32 INT64 BOOL
Resize FP32 FP16 BF16
ReverseSequence FP32 FP16 BF16 INT32 INT64 BOOL
RMSNormalization FP32 FP16 BF16
RNN FP32 FP16 BF16
RoiAlign FP32 FP16
RotaryEmbedding FP32 FP16 BF16
Round FP32 FP16 BF16
STFT FP32
ScaledTanh FP32 FP16 BF16
Scan FP32 FP16 BF16
Scatter FP32 FP16 BF16 INT32 INT64
ScatterElements FP32 FP16 BF16 INT32 INT64
ScatterND FP32 FP16 BF16 INT32 INT64
Selu FP32 FP16 BF16
SequenceAt N
SequenceConstruct N
SequenceEmpty N
SequenceErase N
SequenceInsert N
SequenceLength N
SequenceMap N
Shape FP32 FP16 BF16 INT32 INT64 BOOL
Shrink FP32 FP16 BF16 INT32 INT64
Sigmoid FP32 FP16 BF16
Sign FP32 FP16 BF16 INT32 INT64
Sin FP32 FP16 BF16
Sinh FP32 FP16 BF16
Size FP32 FP16 BF16 INT32 INT64 BOOL
Slice FP32 FP16 BF16 INT32 INT64 BOOL
Softmax FP32 FP16 BF16
SoftmaxCrossEntropyLoss N
Softplus FP32 FP16 BF16
Softsign FP32 FP16 BF16
SpaceToDepth FP32 FP16 BF16 INT32 INT64
Split FP32 FP16 BF16 INT32 INT64 BOOL
SplitToSequence N
Sqrt FP32 FP16 BF16
Squeeze FP32 FP16 BF16 INT32 INT64 BOOL
StringConcat N
StringNormalizer N
StringSplit N
Sub FP32 FP16 BF16 INT32 INT64
Sum FP32 FP16 BF16 INT32 INT64
Tan FP32 FP16 BF16
Tanh FP32 FP16 BF16
TensorScatter FP32 FP16 BF16 INT32
TfIdfVectorizer N
ThresholdedRelu FP32 FP16 BF16
Tile FP32 FP16 BF16 INT32 INT64 BOOL
TopK FP32 FP16 BF16 INT32 INT64
Transpose FP32 FP16 BF16 INT32 INT64 BOOL
Trilu FP32 FP16 BF16 INT32 INT64 BOOL
Unique N
Unsqueeze FP32 FP16 BF16 INT32 INT64 BOOL
Upsample FP32 FP16 BF16
Where FP32 FP16 BF16 INT32 INT64 BOOL
Xor BOOL
"""


def _parse(table: str) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    supported, unsupported = {}, set()
    for line in table.strip().splitlines():
        op, *types = line.split()
        if types == ["N"]:
            unsupported.add(op)
        else:
            supported[op] = frozenset(types)
    return supported, frozenset(unsupported)


#: operator -> the input types TensorRT lists for it
SUPPORTED, UNSUPPORTED = _parse(_TABLE)
