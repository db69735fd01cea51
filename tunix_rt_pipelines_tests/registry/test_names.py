import pytest

from tunix_rt_pipelines.registry.names import InvalidName, parse_ref, validate_name


@pytest.mark.parametrize("bad", ["../etc", "a/b", "a\\b", ".hidden", "", "UPPER", "x" * 65, "a b", "a;rm"])
def test_names_that_could_escape_a_folder_or_a_shell_are_refused(bad):
    with pytest.raises(InvalidName, match="not allowed"):
        validate_name(bad)


def test_references_name_a_number_an_alias_or_an_id_prefix():
    assert parse_ref("smoke_tiny:3").number == 3
    assert parse_ref("smoke_tiny@champion").alias == "champion"
    assert parse_ref("0123abcd").id_prefix == "0123abcd"
    for bad in ("smoke:0", "smoke:x", "smoke@../x", "abc"):
        with pytest.raises(InvalidName):
            parse_ref(bad)
