// y = α·op(A)·op(B) + β·C  ⇒  dA = α·dy·op(B)ᵀ (transposed back when transA),
// dB = α·op(A)ᵀ·dy (transposed back when transB), dC = β·dy (unbroadcast centrally)
import type { Attr } from '../../onnx/graph';
import type { GradRule } from '../rule';

const float = (a: Attr | undefined, dflt: number) => (a !== undefined && typeof a === 'object' && 'f' in a ? a.f : dflt);

export const Gemm: GradRule = {
  op: 'Gemm',
  grad: ({ g, I, GO, needs, int, attr, c }) => {
    const tA = int('transA', 0) === 1;
    const tB = int('transB', 0) === 1;
    const alpha = float(attr('alpha'), 1);
    const beta = float(attr('beta'), 1);
    const dy = GO(0);
    const dA = !needs(0) ? undefined : tA ? g.gemm(I(1), dy, null, { transA: tB, transB: true, alpha }) : g.gemm(dy, I(1), null, { transB: !tB, alpha });
    const dB = !needs(1) ? undefined : tB ? g.gemm(dy, I(0), null, { transA: true, transB: tA, alpha }) : g.gemm(I(0), dy, null, { transA: !tA, alpha });
    // ONNX stores alpha/beta as float32: scale by the value the forward node actually used.
    const dC = needs(2) ? (beta === 1 ? dy : g.mul(dy, c(Math.fround(beta)))) : undefined;
    return [dA, dB, dC];
  },
};
