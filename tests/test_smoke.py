from tests.helpers import exchange_code, get_code


def test_code_flow_end_to_end(client, user, web_client):
    client.force_login(user)
    code, verifier = get_code(client, web_client, scope="files:read")
    response = exchange_code(client, web_client, code, verifier)
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "files:read"
