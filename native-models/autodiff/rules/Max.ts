// z = max(a, b)  ⇒  da = dz where a ≥ b, db = dz elsewhere (a tie goes to a)
import type { GradRule } from '../rule';

export const Max: GradRule = {
  op: 'Max',
  grad: ({ g, node, I, GO, needs, c }) => {
    if (node.inputs.length !== 2) throw new Error(`autodiff: Max node "${node.name}" has ${node.inputs.length} inputs; only the two-input form has a gradient rule`);
    const takeA = g.binary('GreaterOrEqual', I(0), I(1));
    return [needs(0) ? g.where(takeA, GO(0), c(0)) : undefined, needs(1) ? g.where(takeA, c(0), GO(0)) : undefined];
  },
};
