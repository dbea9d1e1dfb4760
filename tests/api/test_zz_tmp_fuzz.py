import pytest
BODIES = [[], None, "x", 1, {"contactMedium": [None]}, {"contactMedium": [{"mediumType": None}]},
          {"name": "A", "engagedParty": "x"}, {"name": "\x00", "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": "a\x00@b.co"}}]},
          {"name": "A", "individual": {"birthDate": "9999-99-99"}}, {"@type": "bankCard"}, {"@type": "tokenizedCard", "token": "tok_\x00abc", "expirationDate": "0000-00", "relatedParty": {"id": "x"}},
          {"@type": "bankCard", "cardNumber": "4242424242424242", "expirationDate": "99/99", "relatedParty": {"id": "\x00"}},
          {"@type": "bankCard", "cardNumber": "4242424242424242", "expirationDate": "2030-12", "relatedParty": {"id": "CUST-1"}, "isPreferred": "maybe"}]
@pytest.mark.parametrize("body", BODIES)
async def test_no_500(api, body):
    for path in ("/tmf-api/customerManagement/v4/customer", "/tmf-api/paymentMethod/v4/paymentMethod", "/bss-api/v1/customer/CUST-1/kyc-attestation"):
        r = await api.post(path, json=body)
        assert r.status_code < 500, (path, body, r.text)
    r = await api.patch("/tmf-api/customerManagement/v4/customer/CUST-1", json=body)
    assert r.status_code < 500, r.text
    r = await api.get("/tmf-api/customerManagement/v4/customer", params={"name": "\x00", "email": "%"})
    assert r.status_code < 500, r.text
    r = await api.get("/tmf-api/party/v4/individual/\x00")
    assert r.status_code < 500, r.text
