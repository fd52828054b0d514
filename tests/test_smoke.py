from tests.helpers import ORG_A, SEED_ACCOUNT, SEED_CNPJ, create_key, key_status, wait_until


def test_seed_cnpj_key_turns_active(client):
    response = create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
    assert response.status_code == 201, response.text
    request_key = response.json()["pix_key_request_key"]
    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")
