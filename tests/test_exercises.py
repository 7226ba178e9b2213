"""minires.exercises: the reference solutions pass every check; stubs and planted wrong answers fail with a
message that names the wrong gradient, the first wrong element and a hint."""
import re

import numpy as np
import pytest

import minires.exercises as ex
from minires.errors import UnknownNameError
from minires.exercises import solutions as sol


@pytest.mark.parametrize("use_torch", [True, False])
@pytest.mark.parametrize("name", ex.names())
def test_reference_solutions_pass(name, use_torch):
    report = ex.check(name, *ex.solution(name), use_torch=use_torch)
    assert report.passed, str(report)
    text = str(report)
    assert "WRONG" not in text and text.startswith(f"exercise {name}: passed")
    assert ("against torch" in text) == use_torch
    assert text.count("finite differences") >= len(ex.EXERCISES[name].gradients)  # every gradient gradchecked


def test_every_exercise_named_by_the_issue_exists():
    assert {"relu", "linear", "residual_join", "residual_block", "batchnorm", "conv2d", "max_pool"} <= set(ex.names())


@pytest.mark.parametrize("name", ex.names())
def test_stubs_say_write_me(name):
    forward, backward = ex.stub(name)
    with pytest.raises(ex.NotWrittenYet, match="not implemented yet: write me"):
        forward(*ex.EXERCISES[name].draw(np.random.default_rng(0)))
    report = ex.check(name, forward, backward)
    assert not report.passed
    assert f"{name}_forward is not implemented yet: write me" in str(report)
    # a written forward with the backward still a stub: the backward is named
    report = ex.check(name, ex.solution(name)[0], backward)
    assert f"{name}_backward is not implemented yet: write me" in str(report), str(report)


@pytest.mark.parametrize("name", ex.names())
def test_templates_run_as_pasted(name):
    namespace = {}
    exec(ex.template(name), namespace)
    report = ex.check(name, namespace[f"{name}_forward"], namespace[f"{name}_backward"])
    assert "is not implemented yet: write me" in str(report)


def _with_gradient(name, index, change):
    """The reference solution of ``name`` with gradient ``index`` replaced by change(gradient, cache)."""
    forward, backward = ex.solution(name)

    def wrong_backward(dy, cache):
        grads = backward(dy, cache)
        grads = list(grads) if isinstance(grads, tuple) else [grads]
        grads[index] = change(grads[index], dy, cache)
        return tuple(grads) if len(grads) > 1 else grads[0]
    return forward, wrong_backward


def _relu_without_mask(g, dy, cache):
    return dy


def _linear_db_mean(g, dy, cache):
    return dy.mean(axis=0)


def _join_shortcut_unmasked(g, dy, cache):
    return dy


def _block_without_shortcut(g, dy, cache):
    return g - sol.residual_join_backward(dy, cache[3])[1]  # drops the gradient that came along the shortcut


def _batchnorm_evaluation_mode(g, dy, cache):
    x, gamma, mean, inv_std = cache
    return dy * (gamma * inv_std).reshape(1, -1, 1, 1)  # ignores that mean and variance depend on x


def _col2im_assigns(g, dy, saved):
    """dx by a col2im that assigns instead of adding: overlapping windows lose all but one contribution."""
    x, weight, window, _ = saved
    (kh, kw), (sh, sw), (ph, pw) = window.kernel, window.stride, window.padding
    n, c, h, w = x.shape
    oc, (oh, ow) = weight.shape[0], window.out
    dcol = (weight.reshape(oc, -1).T @ dy.transpose(1, 0, 2, 3).reshape(oc, -1)).reshape(c, kh, kw, n, oh, ow)
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] = dcol[:, i, j].transpose(1, 0, 2, 3)
    return padded[:, :, ph:ph + h, pw:pw + w]


def _pool_assigns(g, dy, cache):
    """max-pool backward with = instead of +=: right without overlap, wrong where windows share a winner."""
    argmax, shape, _, _ = cache
    dx = np.zeros((shape[0] * shape[1], shape[2] * shape[3]))
    flat = argmax.reshape(len(dx), -1)
    for plane in range(len(dx)):
        dx[plane, flat[plane]] = dy.reshape(len(dx), -1)[plane]
    return dx.reshape(shape)


PLANTED = [  # (exercise, which gradient, the mistake, what the report must say)
    ("relu", 0, _relu_without_mask, ["dx: max abs error", "Hint: relu passes dy where x > 0"]),
    ("linear", 2, _linear_db_mean, ["db: max abs error", "Hint: b is added to every row"]),
    ("linear", 1, lambda g, dy, cache: g.T, ["dw: shape (5, 3), expected (3, 5) (transposed?)"]),
    ("residual_join", 1, _join_shortcut_unmasked, ["dshortcut: max abs error", "not halved"]),
    ("residual_join", 0, lambda g, dy, cache: g / 2, ["dbranch: max abs error"]),
    ("residual_block", 0, _block_without_shortcut, ["dx: max abs error", "fan-out bug"]),
    ("batchnorm", 0, _batchnorm_evaluation_mode, ["dx: max abs error", "evaluation-mode gradient"]),
    ("batchnorm", 1, lambda g, dy, cache: -g, ["dgamma: max abs error"]),
    ("conv2d", 0, _col2im_assigns, ["dx (stride=1, padding=1): max abs error", "overlapping windows add up"]),
    ("conv2d", 1, lambda g, dy, cache: g[:, :, ::-1, ::-1], ["dw (stride=1, padding=1): max abs error"]),
    ("max_pool", 0, _pool_assigns, ["ok     dx (kernel_size=2, stride=2)",
                                    "WRONG  dx (kernel_size=3, stride=2): max abs error", "(+=, not =)"]),
]


@pytest.mark.parametrize("use_torch", [True, False])
@pytest.mark.parametrize("name, index, mistake, says", PLANTED, ids=[f"{p[0]}-{p[2].__name__}" for p in PLANTED])
def test_planted_wrong_gradient_is_named(name, index, mistake, says, use_torch):
    report = ex.check(name, *_with_gradient(name, index, mistake), use_torch=use_torch)
    text = str(report)
    assert not report.passed, text
    for phrase in says:
        assert phrase in text, text
    wrong = [line for line in report.lines if "WRONG" in line]
    assert len(wrong) == 1 and ex.EXERCISES[name].gradients[index] in wrong[0]  # only that gradient
    assert text.startswith(f"exercise {name}: not yet")


@pytest.mark.parametrize("use_torch", [True, False])
def test_the_first_wrong_element_and_the_error_are_exact(use_torch):
    """One element off by 0.5: the report names it, its values and the error."""
    forward, backward = ex.solution("linear")
    captured = {}

    def off_by_half(dy, cache):
        dx, dw, db = backward(dy, cache)
        captured["right"] = dw[2, 1]
        dw = dw.copy()
        dw[2, 1] += 0.5
        dw[2, 4] += 0.25
        return dx, dw, db
    text = str(ex.check("linear", forward, off_by_half, use_torch=use_torch))
    assert "dw: max abs error 0.5 against minires' kernels" in text, text
    assert "2 of 15 elements wrong, the first at dw[2, 1]" in text
    assert f"got {captured['right'] + 0.5:.6g}, expected {captured['right']:.6g}" in text
    assert f"finite differences {captured['right']:.6g}" in text


def test_a_wrong_forward_stops_before_the_gradients():
    forward, backward = ex.solution("conv2d")

    def without_bias(x, w, b, stride=1, padding=0):
        return forward(x, w, 0 * b, stride, padding)
    text = str(ex.check("conv2d", without_bias, backward))
    assert "WRONG  forward (stride=1, padding=1): max abs error" in text
    assert "fix the forward first" in text and "dx" not in text


def test_a_gradient_that_matches_minires_but_not_the_learners_forward_fails():
    """The finite differences are of the learner's own forward: a forward wrong in a way the output check
    misses cannot happen here, but a backward right for another function is caught by them alone."""
    forward, backward = ex.solution("relu")

    def leaky(x):
        return np.where(x > 0, x, 0.0 * x), x
    report = ex.check("relu", leaky, lambda dy, x: dy * (x > 0))
    assert report.passed  # leaky with slope 0 is relu: right


@pytest.mark.parametrize("backward, says", [
    (lambda dy, cache: (dy, dy), "returned 2 gradient(s); expected 3: dx, dw, db"),
    (lambda dy, cache: None, "returned None: did it forget its return statement?"),
    (lambda dy, cache: 1 / 0, "raised ZeroDivisionError: division by zero (line"),
    (lambda dy, cache: ("a", dy, dy), "dx: expected an array of shape (4, 5), got str"),
])
def test_malformed_backwards_are_explained(backward, says):
    text = str(ex.check("linear", ex.solution("linear")[0], backward))
    assert says in text, text


def test_a_forward_that_returns_only_its_output_is_explained():
    text = str(ex.check("relu", lambda x: np.maximum(x, 0), ex.solution("relu")[1]))
    assert "forward must return (out, cache); it returned ndarray" in text


def test_the_learners_arrays_are_copies():
    """A forward that overwrites its input does not corrupt the check's reference values."""
    forward, backward = ex.solution("relu")

    def in_place(x):
        np.maximum(x, 0, out=x)
        return x, x
    assert ex.check("relu", in_place, backward).passed


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="no exercise named 'softmax'; the exercises: relu, linear"):
        ex.check("softmax", None, None)
    with pytest.raises(UnknownNameError):
        ex.template("softmax")


# --- the report, line by line (written for the survivors of a mutation run of check.py) -------------------------

def _off_by_half(backward):
    def wrong(dy, cache):
        dx, dw, db = backward(dy, cache)
        dw = dw.copy()
        dw[2, 1] += 0.5
        dw[2, 4] += 0.25
        return dx, dw, db
    return wrong


@pytest.mark.parametrize("use_torch", [True, False])
def test_the_report_reads_line_by_line(use_torch):
    forward, backward = ex.solution("linear")
    report = ex.check("linear", forward, _off_by_half(backward), use_torch=use_torch)
    assert report.passed is False and repr(report) == str(report)
    lines = str(report).split("\n")
    assert lines[0] == "exercise linear: not yet" and lines[1:] == report.lines
    error = r"\d\.\de[+-]\d\d"
    torch_part = f", {error} against torch" if use_torch else ""
    assert re.fullmatch(f"  ok     forward: max abs error {error} against minires' kernels{torch_part}", lines[1])
    assert re.fullmatch(f"  ok     dx: max abs error {error} against minires' kernels{torch_part}, {error} against "
                        f"finite differences", lines[2])
    assert lines[3].startswith("  WRONG  dw: max abs error 0.5 against minires' kernels (its largest |value| is ")
    assert re.search(r"; 2 of 15 elements wrong, the first at dw\[2, 1\]: got \S+, expected \S+ \(" +
                     ("torch \\S+; " if use_torch else "") + r"finite differences \S+\)\. Hint: dw = dy.T @ x, shape "
                     r"\(OUT, IN\) like w \(x.T @ dy would be its transpose\)$", lines[3])
    assert lines[4].startswith("  ok     db: max abs error")  # the other gradients are still judged
    assert lines[5:] == ([] if use_torch else
                         ["         torch is not installed: compared with minires' kernels and finite differences only"])


def test_a_passing_report_is_exactly_true():
    report = ex.check("relu", *ex.solution("relu"))
    assert report.passed is True and str(report).split("\n")[0] == "exercise relu: passed"
    assert "torch is not installed" not in str(report) and "against torch" in str(report)  # torch is used by default


def test_the_default_seed_is_zero_and_the_seed_draws_the_inputs():
    forward, backward = ex.solution("linear")
    wrong = _off_by_half(backward)
    assert str(ex.check("linear", forward, wrong)) == str(ex.check("linear", forward, wrong, seed=0))
    assert str(ex.check("linear", forward, wrong)) != str(ex.check("linear", forward, wrong, seed=1))


def _first_gradient_not_an_array(backward):
    def wrong(dy, cache):
        grads = backward(dy, cache)
        return ("not an array",) + (grads[1:] if isinstance(grads, tuple) else ())
    return wrong


@pytest.mark.parametrize("name", ["conv2d", "max_pool"])
def test_a_failure_ends_the_check_before_the_next_geometry(name):
    """A stub, a forward that raises, a wrong forward, a backward that returns None or the wrong count: one
    report line each (plus the forward's note), and the second geometry is never tried."""
    forward, backward = ex.solution(name)
    stub_forward, stub_backward = ex.stub(name)
    count = len(ex.EXERCISES[name].gradients)

    def shifted(*args, **kwargs):
        out, cache = forward(*args, **kwargs)
        return out + 1, cache
    cases = {(stub_forward, backward): 1, (forward, stub_backward): 2, (shifted, backward): 2,
             (forward, lambda dy, cache: None): 2, (forward, lambda dy, cache: (dy,) * (count + 1)): 2,
             (lambda *args, **kwargs: forward(*args, **kwargs)[0], backward): 1,  # no cache returned
             (forward, _first_gradient_not_an_array(backward)): 1 + count}
    for (f, b), lines in cases.items():
        report = ex.check(name, f, b)
        assert report.passed is False and len(report.lines) == lines, str(report)
        assert all("stride=2)" not in line for line in report.lines) or name == "max_pool"
        first = ex.EXERCISES[name].cases[0]
        assert all(", ".join(f"{k}={v}" for k, v in first.items()) in line for line in report.lines if "WRONG" in line)


def test_forward_and_backward_are_named_in_their_lines():
    stub_forward, stub_backward = ex.stub("relu")
    forward, backward = ex.solution("relu")
    assert ex.check("relu", stub_forward, backward).lines[0].startswith("  WRONG  forward: relu_forward is not")
    assert ex.check("relu", forward, stub_backward).lines[1].startswith("  WRONG  backward: relu_backward is not")
    assert ex.check("relu", forward, backward).lines[0].startswith("  ok     forward: ")


def test_an_output_without_its_cache_is_caught_even_when_it_has_two_rows():
    """residual_join's output is (2, ...): unpacked as (out, cache) it would look like a pair."""
    forward, backward = ex.solution("residual_join")
    text = str(ex.check("residual_join", lambda a, b: forward(a, b)[0], backward))
    assert "forward must return (out, cache); it returned ndarray" in text
    text = str(ex.check("residual_join", lambda a, b: list(forward(a, b)), backward))
    assert "forward must return (out, cache); it returned list" in text


def test_finite_differences_alone_can_fail_a_gradient():
    """A gradient that matches the engine (and torch) but not the finite differences is still wrong; a
    difference well inside the finite-difference tolerance is not."""
    from minires.exercises import checker as checking
    expected = np.linspace(1.0, 2.0, 6).reshape(2, 3)
    for numeric, right in [(expected * (1 + 1e-3), False), (expected + 1e-8, True)]:
        report = checking.Report("x")
        assert checking._matches(report, "dx", "dx", expected, expected, expected, numeric, "hint") is right
        assert ("against finite differences" in report.lines[0]) and (report.passed is right)


def test_each_failure_is_one_exact_line():
    """Every way a learner's code can go wrong: its report line, word for word, and nothing after it."""
    forward, backward = ex.solution("linear")

    def raising_helper(dy):
        return dy[99]  # an IndexError two frames below check: the learner's own line is named

    cases = [
        (lambda x, w, b: (forward(x, w, b)[0],) * 3, backward,
         ["  WRONG  forward must return (out, cache); it returned a tuple of 3"]),
        (forward, lambda dy, cache: None,
         ["  WRONG  backward returned None: did it forget its return statement?"]),
        (forward, lambda dy, cache: ("a", *backward(dy, cache)[1:]),
         ["  WRONG  dx: expected an array of shape (4, 5), got str"]),
        (forward, lambda dy, cache: raising_helper(dy),
         ["  WRONG  backward raised IndexError: index 99 is out of bounds for axis 0 with size 4 (line "
          f"{raising_helper.__code__.co_firstlineno + 1} of {__file__}: return dy[99]  # an IndexError two frames "
          "below check: the learner's own line is named)"]),
    ]
    for f, b, lines in cases:
        report = ex.check("linear", f, b, use_torch=False)
        judged = [line for line in report.lines if not line.startswith("  ok     ")]  # the right parts
        assert judged[:len(lines)] == lines and report.passed is False, str(report)
        assert judged[len(lines):] == [
            "         torch is not installed: compared with minires' kernels and finite differences only"]


def test_a_gradient_of_another_shape_is_named_with_both_shapes():
    forward, backward = ex.solution("linear")
    report = ex.check("linear", forward, lambda dy, cache: (backward(dy, cache)[0], np.zeros((3, 4)), dy.sum(0)))
    hint = ex.EXERCISES["linear"].hints["dw"]
    assert report.lines[2] == f"  WRONG  dw: shape (3, 4), expected (3, 5). Hint: {hint}"
    report = ex.check("conv2d", *_with_gradient("conv2d", 1, lambda g, dy, cache: g[:, :, :2]))
    assert len(report.lines) == 4 and "stride=2" not in str(report)  # the first geometry's lines only


def test_a_wrong_forward_names_its_first_wrong_output_element_exactly():
    forward, backward = ex.solution("relu")
    x = ex.EXERCISES["relu"].draw(np.random.default_rng(0))[0]
    first = tuple(int(i) for i in np.argwhere(x < 0)[0])
    report = ex.check("relu", lambda x: (np.abs(x), x), backward, use_torch=False)
    assert report.lines[0] == (
        f"  WRONG  forward: max abs error {np.abs(x[x < 0]).max():.3g} against minires' kernels (its largest "
        f"|value| is {np.abs(np.maximum(x, 0)).max():.3g}); {(x < 0).sum()} of 20 elements wrong, the first at "
        f"out[{first[0]}, {first[1]}]: got {abs(x[first]):.6g}, expected 0. Hint: {ex.EXERCISES['relu'].hints['forward']}")
    assert report.lines[1] == "         fix the forward first: the gradients are checked against it"


def test_lists_are_arrays_and_a_bool_is_not():
    forward, backward = ex.solution("linear")
    assert ex.check("linear", forward, lambda dy, cache: [g.tolist() for g in backward(dy, cache)]).passed is True
    relu_forward, relu_backward = ex.solution("relu")
    assert ex.check("relu", relu_forward, lambda dy, x: relu_backward(dy, x).tolist()).passed is True
    assert ex.check("relu", relu_forward, lambda dy, x: (relu_backward(dy, x),)).passed is True
    report = ex.check("linear", forward, lambda dy, cache: (*backward(dy, cache)[:2], True))
    assert report.lines[3] == "  WRONG  db: expected an array of shape (3,), got bool"


def test_an_unknown_exercise_is_named_exactly():
    with pytest.raises(UnknownNameError) as info:
        ex.check("softmax", None, None)
    assert str(info.value) == ("no exercise named 'softmax'; the exercises: relu, linear, residual_join, "
                               "residual_block, batchnorm, conv2d, max_pool")
