"""Small builders of per-thread LLVM IR for NVIDIA GPUs (NVVM intrinsics and PTX inline asm).

A GPU kernel in LLVM IR is an ordinary function that *one thread* runs; what makes it parallel is
the handful of intrinsics that say which thread this is (``llvm.nvvm.read.ptx.sreg.*``), that let
threads of a warp exchange registers (``llvm.nvvm.shfl.sync.*``), that wait for the whole block
(``llvm.nvvm.barrier0``), and memory in address space 3, which the threads of a block share.
Address spaces: 1 is global memory (tensors), 3 is shared memory, 0 is generic.

Every function here takes an ``llvmlite.ir.IRBuilder`` positioned where code should go and
returns the LLVM value it made, so the lowering reads like the algorithm it implements.

Two things LLVM's NVPTX back end does not do the way a GPU programmer wants, so we write PTX
ourselves through inline asm, as Triton does:

* a *predicated vector load* (``@p ld.global.v4.b32``): ``llvm.masked.load`` is split into scalar
  loads on NVPTX, but when a mask is the same over a whole vector one predicate can guard a 128-bit
  access;
* the same for stores (``@p st.global.v4.b32``).

And one pitfall: ``llvm.exp.f32`` has no NVPTX lowering (the process aborts inside LLVM), so
``exp(x)`` is emitted as ``ex2.approx(x * log2(e))``, the hardware's base-2 exponential.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llvmlite import ir

from .ptx import NVPTX_DATA_LAYOUT, NVPTX_TRIPLE

GLOBAL = 1  # address space of global memory
SHARED = 3  # address space of shared memory
WARP_SIZE = 32
FULL_WARP_MASK = 0xFFFFFFFF

i1 = ir.IntType(1)
i8 = ir.IntType(8)
i16 = ir.IntType(16)
i32 = ir.IntType(32)
i64 = ir.IntType(64)
f16 = ir.HalfType()
f32 = ir.FloatType()
f64 = ir.DoubleType()
global_ptr = ir.PointerType(addrspace=GLOBAL)
shared_ptr = ir.PointerType(addrspace=SHARED)


def new_module(name: str) -> ir.Module:
    """An empty LLVM module for the NVPTX target."""
    module = ir.Module(name=name)
    module.triple = NVPTX_TRIPLE
    module.data_layout = NVPTX_DATA_LAYOUT
    return module


def new_kernel(module: ir.Module, name: str, arg_types: Sequence[ir.Type],
               arg_names: Sequence[str] = ()) -> ir.Function:
    """A launchable kernel (``ptx_kernel`` calling convention -> a PTX ``.entry``)."""
    kernel = ir.Function(module, ir.FunctionType(ir.VoidType(), list(arg_types)), name)
    kernel.calling_convention = "ptx_kernel"
    for arg, arg_name in zip(kernel.args, arg_names, strict=False):
        arg.name = arg_name
    for arg in kernel.args:
        if isinstance(arg.type, ir.PointerType):
            # Tensors given to a kernel do not overlap in the course's kernels; noalias lets LLVM
            # use the read-only data cache (ld.global.nc) for loads.
            arg.add_attribute("noalias")
    return kernel


def set_max_threads(kernel: ir.Function, threads: int) -> None:
    """Tell ptxas the block size (PTX ``.maxntid``), so it may give each thread up to
    65536 / threads registers, and never more than a launch of that size can have."""
    module = kernel.module
    annotation = module.add_metadata([kernel, ir.MetaDataString(module, "maxntidx"),
                                      ir.Constant(i32, threads)])
    module.add_named_metadata("nvvm.annotations").add(annotation)


def intrinsic(module: ir.Module, name: str, return_type: ir.Type,
              arg_types: Sequence[ir.Type]) -> ir.Function:
    """Declare (once) and return the intrinsic ``name`` with exactly this signature.

    A wrong signature is not caught by LLVM: it becomes a call to an undefined ``.func`` that fails
    only when the driver loads the PTX. :func:`~.lint.lint_ptx` catches that early.
    """
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(return_type, list(arg_types)), name)


def _special_register(builder: ir.IRBuilder, register: str) -> ir.Value:
    fn = intrinsic(builder.module, f"llvm.nvvm.read.ptx.sreg.{register}", i32, [])
    return builder.call(fn, [])


def thread_id(builder: ir.IRBuilder) -> ir.Value:
    """This thread's index in its block (``threadIdx.x``); blocks are one-dimensional here."""
    return _special_register(builder, "tid.x")


def block_id(builder: ir.IRBuilder, axis: int = 0) -> ir.Value:
    """The program id along ``axis`` (``blockIdx.{x,y,z}``)."""
    return _special_register(builder, "ctaid." + "xyz"[axis])


def num_blocks(builder: ir.IRBuilder, axis: int = 0) -> ir.Value:
    """The number of programs along ``axis`` (``gridDim.{x,y,z}``)."""
    return _special_register(builder, "nctaid." + "xyz"[axis])


def lane_and_warp(builder: ir.IRBuilder) -> tuple[ir.Value, ir.Value]:
    """(lane id in the warp, warp id in the block) of this thread."""
    tid = thread_id(builder)
    lane = builder.and_(tid, ir.Constant(i32, WARP_SIZE - 1), name="lane")
    warp = builder.lshr(tid, ir.Constant(i32, 5), name="warp")
    return lane, warp


def barrier(builder: ir.IRBuilder) -> None:
    """``__syncthreads()``: every thread of the block waits here; shared-memory writes before it
    are visible to every thread after it."""
    builder.call(intrinsic(builder.module, "llvm.nvvm.barrier0", ir.VoidType(), []), [])


def shuffle_xor(builder: ir.IRBuilder, value: ir.Value, lane_mask: int) -> ir.Value:
    """The ``value`` held by lane ``lane ^ lane_mask`` of this warp (a butterfly exchange).

    The hardware shuffles 32-bit registers; other types travel as 32-bit integers.
    """
    ty = value.type
    mask = ir.Constant(i32, FULL_WARP_MASK)
    offset = ir.Constant(i32, lane_mask)
    clamp = ir.Constant(i32, WARP_SIZE - 1)
    if ty == f32 or ty == i32:
        name = "llvm.nvvm.shfl.sync.bfly." + ("f32" if ty == f32 else "i32")
        fn = intrinsic(builder.module, name, ty, [i32, ty, i32, i32])
        return builder.call(fn, [mask, value, offset, clamp])
    if ty == f64 or ty == i64:  # two 32-bit halves
        as_int = builder.bitcast(value, i64) if ty == f64 else value
        low = shuffle_xor(builder, builder.trunc(as_int, i32), lane_mask)
        high = shuffle_xor(builder, builder.trunc(builder.lshr(as_int, ir.Constant(i64, 32)), i32),
                           lane_mask)
        joined = builder.or_(builder.zext(low, i64),
                             builder.shl(builder.zext(high, i64), ir.Constant(i64, 32)))
        return builder.bitcast(joined, f64) if ty == f64 else joined
    # Narrow types (f16, bf16, i8, i16, i1): widen to 32 bits and back.
    bits = ty.width if isinstance(ty, ir.IntType) else 16
    as_int = value if isinstance(ty, ir.IntType) else builder.bitcast(value, ir.IntType(bits))
    moved = builder.trunc(shuffle_xor(builder, builder.zext(as_int, i32), lane_mask),
                          ir.IntType(bits))
    return moved if isinstance(ty, ir.IntType) else builder.bitcast(moved, ty)


def butterfly_offsets(lanes: int, lane_stride: int = 1) -> list[int]:
    """The xor distances of a butterfly reduction over ``lanes`` lanes spaced ``lane_stride`` apart.

    After exchanging with the lane at each distance and combining, every lane of a group holds the
    combination of the whole group: ``[16, 8, 4, 2, 1]`` for a full warp.
    """
    offsets = []
    distance = lanes // 2
    while distance >= 1:
        offsets.append(distance * lane_stride)
        distance //= 2
    return offsets


def warp_reduce(builder: ir.IRBuilder, value: ir.Value,
                combine: Callable[[ir.Value, ir.Value], ir.Value],
                offsets: Sequence[int]) -> ir.Value:
    """Combine ``value`` across the lanes reached by xor-ing the lane id with ``offsets``."""
    for offset in offsets:
        value = combine(value, shuffle_xor(builder, value, offset))
    return value


def shared_memory(module: ir.Module, name: str, nbytes: int, align: int = 16) -> ir.GlobalVariable:
    """A static shared-memory buffer of ``nbytes`` bytes (an ``addrspace(3)`` global)."""
    buffer = ir.GlobalVariable(module, ir.ArrayType(i8, max(nbytes, 1)), name, addrspace=SHARED)
    buffer.linkage = "internal"
    buffer.align = align
    buffer.initializer = ir.Constant(ir.ArrayType(i8, max(nbytes, 1)), ir.Undefined)
    # Refer to it through an untyped pointer (as LLVM itself does), so that values of any type
    # can be stored at byte offsets from it.
    buffer.type = shared_ptr
    return buffer


def dynamic_shared_memory(module: ir.Module, name: str, align: int = 128) -> ir.GlobalVariable:
    """The block's *dynamic* shared memory: an external ``addrspace(3)`` array of size 0
    (``.extern .shared .align 128 .b8 name[]`` in PTX). Its size is not in the kernel: the
    launch gives it (``sharedMemBytes`` of ``cuLaunchKernel``). Static shared memory is at most
    48 KB per block; dynamic shared memory may be more (227 KB on an H100/H200) once the
    kernel's ``CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`` allows it."""
    buffer = ir.GlobalVariable(module, ir.ArrayType(i8, 0), name, addrspace=SHARED)
    buffer.linkage = "external"
    buffer.align = align
    buffer.type = shared_ptr
    return buffer


def exp2(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """2**x with the hardware's approximate base-2 exponential (``ex2.approx.f32``)."""
    fn = intrinsic(builder.module, "llvm.nvvm.ex2.approx.f", f32, [f32])
    return builder.call(fn, [x])


def exp(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e**x as 2**(x * log2(e)): never ``llvm.exp.f32``, which NVPTX cannot lower."""
    return exp2(builder, builder.fmul(x, ir.Constant(f32, math.log2(math.e))))


def _register_class(bits: int) -> tuple[str, str]:
    """(PTX type suffix, inline-asm constraint letter) for a register of ``bits`` bits."""
    return {16: ("b16", "h"), 32: ("b32", "r"), 64: ("b64", "l")}[bits]


def _words(elem_type: ir.Type, count: int) -> tuple[ir.Type, int]:
    """How a vector of ``count`` elements travels through asm: as ``n`` registers of one type."""
    elem_bits = _bits(elem_type)
    total = elem_bits * count
    word_bits = 32 if total >= 32 else total
    if elem_bits == 64:
        word_bits = 64
    return ir.IntType(word_bits), total // word_bits


def _bits(ty: ir.Type) -> int:
    if isinstance(ty, ir.IntType):
        return ty.width
    return {f16: 16, f32: 32, f64: 64}.get(ty, 16)  # bf16 prints as f16-sized storage


def _to_words(builder: ir.IRBuilder, values: Sequence[ir.Value], word: ir.Type,
              nwords: int) -> list[ir.Value]:
    vector = ir.VectorType(values[0].type, len(values))
    packed = ir.Constant(vector, ir.Undefined)
    for index, v in enumerate(values):
        packed = builder.insert_element(packed, v, ir.Constant(i32, index))
    if nwords == 1:
        return [builder.bitcast(packed, word)]
    words = builder.bitcast(packed, ir.VectorType(word, nwords))
    return [builder.extract_element(words, ir.Constant(i32, w)) for w in range(nwords)]


def _from_words(builder: ir.IRBuilder, words: Sequence[ir.Value], elem_type: ir.Type,
                count: int) -> list[ir.Value]:
    word = words[0].type
    packed = ir.Constant(ir.VectorType(word, len(words)), ir.Undefined)
    for index, w in enumerate(words):
        packed = builder.insert_element(packed, w, ir.Constant(i32, index))
    if len(words) == 1:
        vector = builder.bitcast(words[0], ir.VectorType(elem_type, count))
    else:
        vector = builder.bitcast(packed, ir.VectorType(elem_type, count))
    return [builder.extract_element(vector, ir.Constant(i32, i)) for i in range(count)]


def predicated_load(builder: ir.IRBuilder, address: ir.Value, predicate: ir.Value,
                    others: Sequence[ir.Value]) -> list[ir.Value]:
    """Load ``len(others)`` consecutive elements at ``address`` if ``predicate``, else ``others``.

    One PTX instruction ``@p ld.global.v{n}.b32``: the mask costs a predicate, not a branch, and
    the access stays as wide as the unmasked one. ``address`` must be aligned to the access size.
    The registers start as ``others`` (tied operands), so a false predicate leaves them there.
    """
    count = len(others)
    elem_type = others[0].type
    if _bits(elem_type) * count == 8:  # one byte: PTX loads .b8 into a 16-bit register
        wide = [builder.zext(_as_int(builder, others[0]), i16)]
        (loaded,) = _predicated_load_words(builder, address, predicate, wide, "b8")
        return [_from_int(builder, builder.trunc(loaded, i8), elem_type)]
    word, nwords = _words(elem_type, count)
    suffix, letter = _register_class(word.width)
    other_words = _to_words(builder, others, word, nwords)
    outputs = ", ".join(f"${w}" for w in range(nwords))
    vector = f".v{nwords}" if nwords > 1 else ""
    destination = f"{{ {outputs} }}" if nwords > 1 else "$0"
    asm = f"@${nwords + 1} ld.global{vector}.{suffix} {destination}, [ ${nwords} + 0 ];"
    constraints = ",".join([f"={letter}"] * nwords
                           + ["l", "b"] + [str(w) for w in range(nwords)])
    result_type = ir.LiteralStructType([word] * nwords) if nwords > 1 else word
    fn_type = ir.FunctionType(result_type, [global_ptr, i1] + [word] * nwords)
    inline = ir.InlineAsm(fn_type, asm, constraints, side_effect=True)
    result = builder.call(inline, [address, predicate, *other_words])
    words = ([builder.extract_value(result, w) for w in range(nwords)] if nwords > 1 else [result])
    return _from_words(builder, words, elem_type, count)


def _as_int(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    return value if isinstance(value.type, ir.IntType) else builder.bitcast(
        value, ir.IntType(_bits(value.type)))


def _from_int(builder: ir.IRBuilder, value: ir.Value, ty: ir.Type) -> ir.Value:
    return value if isinstance(ty, ir.IntType) else builder.bitcast(value, ty)


def _predicated_load_words(builder, address, predicate, others, suffix):
    """``@p ld.global.<suffix>`` of one register (16 bits), starting as ``others[0]``."""
    inline = ir.InlineAsm(ir.FunctionType(i16, [global_ptr, i1, i16]),
                          f"@$2 ld.global.{suffix} $0, [ $1 + 0 ];", "=h,l,b,0",
                          side_effect=True)
    return [builder.call(inline, [address, predicate, others[0]])]


def predicated_store(builder: ir.IRBuilder, address: ir.Value, predicate: ir.Value,
                     values: Sequence[ir.Value]) -> None:
    """Store consecutive ``values`` at ``address`` if ``predicate`` (``@p st.global.v{n}.b32``)."""
    if _bits(values[0].type) * len(values) == 8:  # one byte, from a 16-bit register
        wide = builder.zext(_as_int(builder, values[0]), i16)
        inline = ir.InlineAsm(ir.FunctionType(ir.VoidType(), [global_ptr, i1, i16]),
                              "@$1 st.global.b8 [ $0 + 0 ], $2;", "l,b,h", side_effect=True)
        builder.call(inline, [address, predicate, wide])
        return
    word, nwords = _words(values[0].type, len(values))
    suffix, letter = _register_class(word.width)
    words = _to_words(builder, values, word, nwords)
    operands = ", ".join(f"${w + 2}" for w in range(nwords))
    source = f"{{ {operands} }}" if nwords > 1 else "$2"
    vector = f".v{nwords}" if nwords > 1 else ""
    asm = f"@$1 st.global{vector}.{suffix} [ $0 + 0 ], {source};"
    constraints = ",".join(["l", "b"] + [letter] * nwords)
    fn_type = ir.FunctionType(ir.VoidType(), [global_ptr, i1] + [word] * nwords)
    inline = ir.InlineAsm(fn_type, asm, constraints, side_effect=True)
    builder.call(inline, [address, predicate, *words])


# ----- asynchronous copies (cp.async, sm_80 and later) ----------------------------------------
def cp_async(builder: ir.IRBuilder, shared_address: ir.Value, source: ir.Value, nbytes: int,
             predicate: ir.Value) -> None:
    """``cp.async.{cg|ca}.shared.global [dst], [src], nbytes, src_size``: copy ``nbytes`` (4, 8
    or 16) from global memory to shared memory (``shared_address``, 32-bit) without waiting and
    without registers. ``src_size`` is ``nbytes`` where ``predicate`` holds, else 0: nothing is
    read and the destination is filled with zeros. ``.cg`` (16 bytes only) skips the L1 cache."""
    cache = "cg" if nbytes == 16 else "ca"
    size = builder.select(predicate, ir.Constant(i32, nbytes), ir.Constant(i32, 0))
    asm = f"cp.async.{cache}.shared.global [ $0 ], [ $1 ], {nbytes}, $2;"
    fn_type = ir.FunctionType(ir.VoidType(), [i32, global_ptr, i32])
    builder.call(ir.InlineAsm(fn_type, asm, "r,l,r", side_effect=True),
                 [shared_address, source, size])


def cp_async_commit(builder: ir.IRBuilder) -> None:
    """``cp.async.commit_group``: the copies this thread issued since the last commit form a
    group."""
    fn_type = ir.FunctionType(ir.VoidType(), [])
    builder.call(ir.InlineAsm(fn_type, "cp.async.commit_group;", "", side_effect=True), [])


def cp_async_wait(builder: ir.IRBuilder, pending: int) -> None:
    """``cp.async.wait_group pending``: wait until at most ``pending`` of this thread's groups
    are still in flight (the older ones have landed in shared memory)."""
    fn_type = ir.FunctionType(ir.VoidType(), [])
    builder.call(ir.InlineAsm(fn_type, f"cp.async.wait_group {pending};", "",
                              side_effect=True), [])


# ----- tensor cores ----------------------------------------------------------------------------
def shared_address_32(builder: ir.IRBuilder, pointer: ir.Value) -> ir.Value:
    """A shared-memory pointer as the 32-bit address PTX's ``.shared`` instructions take."""
    return builder.ptrtoint(pointer, i32)


def ldmatrix(builder: ir.IRBuilder, address: ir.Value, count: int, trans: bool) -> list[ir.Value]:
    """``ldmatrix.sync.aligned.m8n8.x{count}[.trans].shared.b16``: the warp loads ``count``
    8x8 matrices of 16-bit elements from shared memory; lane ``8i + r`` gives the address
    (``address``, 32-bit) of row ``r`` of matrix ``i``, and every lane receives one 32-bit
    register per matrix: two elements of row ``lane >> 2`` (of a column, with ``.trans``) at
    columns ``2 * (lane & 3)`` and the next."""
    outputs = ", ".join(f"${i}" for i in range(count))
    asm = (f"ldmatrix.sync.aligned.m8n8.x{count}{'.trans' if trans else ''}.shared.b16 "
           f"{{ {outputs} }}, [ ${count} ];")
    constraints = ",".join(["=r"] * count + ["r"])
    result_type = ir.LiteralStructType([i32] * count) if count > 1 else i32
    inline = ir.InlineAsm(ir.FunctionType(result_type, [i32]), asm, constraints,
                          side_effect=True)
    result = builder.call(inline, [address])
    if count == 1:
        return [result]
    return [builder.extract_value(result, i) for i in range(count)]


def mma_m16n8k16(builder: ir.IRBuilder, a: list[ir.Value], b: list[ir.Value],
                 c: list[ir.Value], operand_type: str) -> list[ir.Value]:
    """``mma.sync.aligned.m16n8k16.row.col.f32.<t>.<t>.f32``: D = A (16x16) @ B (16x8) + C
    for the warp; ``a`` four and ``b`` two 32-bit registers of packed ``operand_type``
    (``f16`` or ``bf16``) pairs, ``c`` four f32 (the fragment map is in
    ``passes/gpu/mma_layouts.py``). Returns the four f32 of D."""
    asm = (f"mma.sync.aligned.m16n8k16.row.col.f32.{operand_type}.{operand_type}.f32 "
           "{ $0, $1, $2, $3 }, { $4, $5, $6, $7 }, { $8, $9 }, { $10, $11, $12, $13 };")
    constraints = "=f,=f,=f,=f,r,r,r,r,r,r,0,1,2,3"
    fn_type = ir.FunctionType(ir.LiteralStructType([f32] * 4), [i32] * 6 + [f32] * 4)
    inline = ir.InlineAsm(fn_type, asm, constraints)
    result = builder.call(inline, [*a, *b, *c])
    return [builder.extract_value(result, i) for i in range(4)]
