"""Software pipelining with ``cp.async``: a ``tl.dot`` loop whose operands flow through a ring
of ``num_stages`` shared-memory slots, ``num_stages - 1`` tiles ahead of the multiply.

Input: Tile IR after the common passes; used by the ``gpu.pipeline_loads`` pass when
``num_stages`` is 3 or more (with 2 the next tiles wait in registers instead,
:mod:`.pipeline_loads`).
Output: each suitable ``tile.for`` rewritten, as Triton's pipeliner does::

    %ring_a = gpu.alloc_ring {num_stages = S}        # S slots of one A tile each
    gpu.async_copy %ring_a, slot j, a_ptrs(j), mask(j) & (iteration j exists)   # j < S - 1
    gpu.async_commit                                  # ... one group per prologue iteration
    for k ... iter_args(acc, a_ptrs, slot = 0) {num_stages = S}:
        gpu.async_wait {pending = S - 2}              # tile k has landed; bar.sync
        %a = gpu.ring_load %ring_a, %slot             # read it (ldmatrix, in the dot)
        gpu.async_copy %ring_a, (slot + S - 1) % S, a_ptrs(k + S - 1), ...   # S - 1 ahead
        gpu.async_commit
        acc = dot(%a, %b, acc)                        # multiplies while the copies fly
        yield acc, a_ptrs + step, (slot + 1) % S
    gpu.async_wait {pending = 0}

Idea: a ``cp.async`` copies global memory into shared memory without passing through the
thread's registers and without making the thread wait; ``commit_group`` closes a group of
copies and ``wait_group N`` waits until at most ``N`` groups are still in flight. With ``S``
slots, ``S - 1`` tiles are always on their way while the tensor cores work on the current
one. The slot written in iteration ``k`` is the one read in iteration ``k - 1``: the barrier
that ``gpu.async_wait`` ends with (every thread has finished iteration ``k - 1``) makes the
overwrite safe, and makes every thread's landed copies visible to every other thread.

A copy past the last iteration is masked off entirely: it writes zeros and reads nothing.
The loop is left for the register pipeline unless every load in it feeds a ``tl.dot`` operand
(directly, or through ``tl.trans``: the slot is then read as the transposed tile, as K is in
attention's ``Q K^T``) and fills masked elements with zero (or nothing), as ``cp.async``'s
zero-fill does.
"""

from __future__ import annotations

from ...ir.ops import Block, Function, Op, Value, walk_ops
from ...ir.types import TileType, i1, i32
from .pipeline_loads import _Cloner, _new_op, _pipelinable_loads, _remove_dead, pipeline_loads

ALLOC_RING, ASYNC_COPY = "gpu.alloc_ring", "gpu.async_copy"
ASYNC_COMMIT, ASYNC_WAIT, RING_LOAD = "gpu.async_commit", "gpu.async_wait", "gpu.ring_load"
SCALAR_I32 = TileType((), i32)


def _is_zero(value: Value) -> bool:
    owner = value.owner
    while isinstance(owner, Op) and owner.name in ("tile.splat", "tile.broadcast", "tile.cast"):
        owner = owner.operands[0].owner
    return isinstance(owner, Op) and owner.name in ("tile.constant", "tile.full") and \
        owner.attrs.get("value") == 0


def _ring_loads(body: Block) -> list[Op] | None:
    """The loads that can go through rings (every load of the loop), or None."""
    loads = _pipelinable_loads(body)
    if not loads:
        return None
    users: dict[int, list[tuple[Op, int]]] = {}
    for op in walk_ops(body):
        for index, operand in enumerate(op.operands):
            users.setdefault(id(operand), []).append((op, index))
    def feeds_dot(user: Op, index: int) -> bool:
        if user.name == "tile.trans":  # K of attention: read transposed, in place
            uses = users.get(id(user.result), [])
            return bool(uses) and all(u.name == "tile.dot" and i <= 1 for u, i in uses)
        return user.name == "tile.dot" and index <= 1

    for load in loads:
        uses = users.get(id(load.result), [])
        element = load.result.type.element.name
        if (load.result.type.rank != 2 or element not in ("f16", "bf16") or not uses
                or not all(feeds_dot(user, index) for user, index in uses)):
            return None
        if len(load.operands) > 2 and not _is_zero(load.operands[2]):
            return None  # masked elements must read as zero
    return loads


class _Emitter:
    """Appends new ops to a list."""

    def __init__(self, out: list[Op], loc):
        self.out, self.loc = out, loc

    def op(self, name, operands, result_type=None, **attrs) -> Value | None:
        if result_type is None:
            self.out.append(Op(name, list(operands), [], dict(attrs), loc=self.loc))
            return None
        new = _new_op(name, operands, result_type, self.loc, attrs)
        self.out.append(new)
        return new.result

    def const(self, value: int, type_=SCALAR_I32) -> Value:
        return self.op("tile.constant", [], type_, value=value)

    def copy(self, ring: Value, slot: Value, cloner: _Cloner, load: Op, exists: Value) -> None:
        """``load`` as an asynchronous copy into ``ring[slot]``, masked by ``exists`` too."""
        shape = load.result.type.shape
        pointers = cloner.value(load.operands[0])
        mask = self.op("tile.splat", [exists], TileType(shape, i1))
        if load.attrs.get("has_mask"):
            mask = self.op("tile.and", [cloner.value(load.operands[1]), mask],
                           TileType(shape, i1))
        self.op(ASYNC_COPY, [ring, slot, pointers, mask])


def _chain(body: Block, first: dict, iv: Value, ivs: list[Value], out: list[Op]) -> list:
    """One cloner per iteration ahead: the ``j``-th sees the induction variable ``ivs[j]`` and
    the carried values as the ``j - 1``-th would yield them (the first: ``first``)."""
    carried, yielded = body.args[1:], body.ops[-1].operands
    cloners = [_Cloner(body, {iv: ivs[0], **first}, out)]
    for next_iv in ivs[1:]:
        before = cloners[-1]
        cloners.append(_Cloner(body, {iv: next_iv}, out, lazy={
            arg: (lambda v=value, c=before: c.value(v))
            for arg, value in zip(carried, yielded, strict=True)}))
    return cloners


def _pipeline(block: Block, loop: Op, stages: int) -> bool:
    body = loop.regions[0]
    loads = _ring_loads(body)
    if loads is None:
        return False
    lower, upper, step = loop.operands[:3]
    inits = loop.operands[3:]
    iv, carried = body.args[0], body.args[1:]
    scalar, flag = iv.type, TileType((), i1)
    prologue: list[Op] = []
    emit = _Emitter(prologue, loop.loc)
    rings = [emit.op(ALLOC_RING, [], TileType((stages, *ld.result.type.shape),
                                               ld.result.type.element), num_stages=stages)
             for ld in loads]
    try:
        ivs = [lower] + [emit.op("tile.add", [lower, emit.op("tile.mul", [
            step, emit.const(j, scalar)], scalar)], scalar) for j in range(1, stages - 1)]
        cloners = _chain(body, dict(zip(carried, inits, strict=True)), iv, ivs, prologue)
        for j, (iteration, cloner) in enumerate(zip(ivs, cloners, strict=True)):
            exists = emit.op("tile.lt", [iteration, upper], flag)
            slot = emit.const(j)
            for ring, load in zip(rings, loads, strict=True):
                emit.copy(ring, slot, cloner, load, exists)
            emit.op(ASYNC_COMMIT, [])
        zero = emit.const(0)
        # In the body: wait for this iteration's tiles, read them, send for S - 1 ahead.
        top: list[Op] = []
        slot_arg = Value(SCALAR_I32, "slot", None)
        _Emitter(top, loop.loc).op(ASYNC_WAIT, [], pending=stages - 2)
        reads = [_Emitter(top, loop.loc).op(RING_LOAD, [ring, slot_arg], load.result.type)
                 for ring, load in zip(rings, loads, strict=True)]
        ahead: list[Op] = []
        emit = _Emitter(ahead, loop.loc)
        ivs = [iv] + [emit.op("tile.add", [iv, emit.op("tile.mul", [
            step, emit.const(j, scalar)], scalar)], scalar) for j in range(1, stages)]
        cloners = _chain(body, {}, iv, ivs, ahead)
        exists = emit.op("tile.lt", [ivs[-1], upper], flag)
        count = emit.const(stages)
        write = emit.op("tile.mod", [emit.op("tile.add", [slot_arg, emit.const(stages - 1)],
                                             SCALAR_I32), count], SCALAR_I32)
        for ring, load in zip(rings, loads, strict=True):
            emit.copy(ring, write, cloners[-1], load, exists)
        emit.op(ASYNC_COMMIT, [])
        following = emit.op("tile.mod", [emit.op("tile.add", [slot_arg, emit.const(1)],
                                                 SCALAR_I32), count], SCALAR_I32)
    except ValueError:  # something a load needs cannot be computed ahead
        return False
    # Rewire: the slot is carried; the loads become ring reads.
    position = block.ops.index(loop)
    block.ops[position:position] = prologue
    block.ops.insert(block.ops.index(loop) + 1, Op(ASYNC_WAIT, [], [], {"pending": 0},
                                                     loc=loop.loc))
    loop.operands.append(zero)
    real_slot = body.add_arg(SCALAR_I32, "slot")
    for op in top + ahead:
        op.operands = [real_slot if v is slot_arg else v for v in op.operands]
    replace = {load.result: read for load, read in zip(loads, reads, strict=True)}
    for load in loads:
        body.ops.remove(load)
    for op in walk_ops(body):
        op.operands = [replace.get(v, v) for v in op.operands]
    body.ops[0:0] = top
    first_dot = next(i for i, op in enumerate(body.ops) if op.name == "tile.dot")
    body.ops[first_dot:first_dot] = ahead
    body.ops[-1].operands.append(following)
    loop.results.append(Value(SCALAR_I32, "", loop))
    loop.attrs["num_stages"] = stages
    _remove_dead(body)
    return True


def pipeline_async(fn: Function, num_stages: int) -> Function:
    """Pipeline every suitable loop of ``fn`` through ``cp.async`` rings of ``num_stages``
    slots (3 or more); a loop that cannot be gets the register pipeline of
    :mod:`.pipeline_loads`."""
    if num_stages < 3:
        return pipeline_loads(fn, num_stages)

    def visit(block: Block) -> None:
        for op in list(block.ops):
            for region in op.regions:
                visit(region)
            if op.name == "tile.for" and "num_stages" not in op.attrs:
                _pipeline(block, op, num_stages)

    visit(fn.body)
    return pipeline_loads(fn, 2)  # loops left alone still load one iteration ahead
