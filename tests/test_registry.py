import pytest

from drscreen.registry import Registry


def test_registry_create_and_errors():
    reg: Registry[int] = Registry("thing")

    @reg.register("double", paper="none")
    def double(x: int = 2) -> int:
        return 2 * x

    assert reg.create("double", x=4) == 8
    assert reg.get("double").metadata == {"paper": "none"}
    assert "double" in reg and len(reg) == 1 and reg.names() == ["double"]
    with pytest.raises(KeyError, match="Did you mean double"):
        reg.create("doubel")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("double")(double)
