#!/usr/bin/env python3
"""Checks that the official AWS SDK for Python (boto3) works unchanged against a Cognito
user pool endpoint: boxoffice's SSO simulator, or a real pool.

It signs a fresh random user up, confirms it (reading the code from the simulator's control
surface when the pool does not auto-confirm), signs in with USER_PASSWORD_AUTH, reads the
user back with GetUser, refreshes with REFRESH_TOKEN_AUTH, verifies the id token's RS256
signature against the pool's JWKS ({iss}/.well-known/jwks.json), checks that a wrong
password surfaces as boto3's NotAuthorizedException, and that GlobalSignOut revokes the
refresh token.

Exit status 0 when every step passed; 1 with a message naming the failed step otherwise.
"""

import argparse
import base64
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class CheckFailed(Exception):
    """A step did not behave as Cognito does."""


def step(message):
    print(f"  ok  {message}", flush=True)


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def b64url_decode(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def http_get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"GET {url} answered {error.code}: {error.read()[:300]!r}") from error
    except (urllib.error.URLError, ValueError) as error:
        raise CheckFailed(f"GET {url} failed: {error}") from error


def default_control_url(endpoint_url):
    """Simulator mode mounts the simulator at /sim/sso and its control at /sim/control/sso;
    a simulator alone on its port has its control at /sim/control/sso of that port."""
    base = endpoint_url.rstrip("/")
    if base.endswith("/sso"):
        return base[: -len("/sso")] + "/control/sso"
    return base + "/sim/control/sso"


def verify_rs256(token, expected_audience, user_pool_id):
    """Verifies the JWT's signature with the key its header names in the issuer's JWKS and
    returns its claims."""
    try:
        header_segment, payload_segment, signature_segment = token.split(".")
        header = json.loads(b64url_decode(header_segment))
        claims = json.loads(b64url_decode(payload_segment))
        signature = b64url_decode(signature_segment)
    except ValueError as error:
        raise CheckFailed(f"the id token is not a JWT: {error}") from error
    expect(header.get("alg") == "RS256", f"id token alg is {header.get('alg')!r}, expected RS256")
    expect("kid" in header, "id token header has no kid")
    issuer = claims.get("iss", "")
    expect(issuer.endswith("/" + user_pool_id), f"iss {issuer!r} does not end with the user pool id")
    jwks = http_get_json(issuer + "/.well-known/jwks.json")
    keys = [key for key in jwks.get("keys", []) if key.get("kid") == header["kid"]]
    expect(len(keys) == 1, f"the JWKS has no key with kid {header['kid']!r}")
    key = keys[0]
    expect(key.get("kty") == "RSA" and key.get("use") == "sig", f"unexpected JWK {key}")
    public_key = rsa.RSAPublicNumbers(
        int.from_bytes(b64url_decode(key["e"]), "big"),
        int.from_bytes(b64url_decode(key["n"]), "big"),
    ).public_key()
    try:
        public_key.verify(
            signature,
            f"{header_segment}.{payload_segment}".encode("ascii"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature as error:
        raise CheckFailed("the id token's signature does not verify with the JWKS key") from error
    expect(claims.get("aud") == expected_audience, f"aud is {claims.get('aud')!r}, expected the client id")
    expect(claims.get("token_use") == "id", f"token_use is {claims.get('token_use')!r}")
    expect(claims.get("exp", 0) > claims.get("iat", 0), "exp is not after iat")
    return claims


def run(args):
    client = boto3.client(
        "cognito-idp",
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    control_url = (args.control_url or default_control_url(args.endpoint_url)).rstrip("/")
    email = f"sdk-check-{secrets.token_hex(6)}@example.com"
    password = f"Sdk-{secrets.token_hex(6)}-Aa9"

    signed_up = client.sign_up(
        ClientId=args.client_id,
        Username=email,
        Password=password,
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "given_name", "Value": "Sdk"},
            {"Name": "family_name", "Value": "Check"},
        ],
    )
    user_sub = signed_up.get("UserSub")
    expect(user_sub, "SignUp returned no UserSub")
    step(f"SignUp {email} (UserSub {user_sub}, UserConfirmed {signed_up['UserConfirmed']})")

    if not signed_up["UserConfirmed"]:
        codes = http_get_json(f"{control_url}/users/{urllib.parse.quote(email)}/codes")
        code = (codes.get("confirmationCode") or {}).get("code")
        expect(code, f"the control surface shows no confirmation code: {codes}")
        client.confirm_sign_up(ClientId=args.client_id, Username=email, ConfirmationCode=code)
        step("ConfirmSignUp with the code from the control surface")

    auth = client.initiate_auth(
        ClientId=args.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    result = auth.get("AuthenticationResult") or {}
    for field in ("AccessToken", "IdToken", "RefreshToken", "ExpiresIn"):
        expect(field in result, f"InitiateAuth(USER_PASSWORD_AUTH) returned no {field}: {auth}")
    expect(result.get("TokenType") == "Bearer", f"TokenType is {result.get('TokenType')!r}")
    step(f"InitiateAuth USER_PASSWORD_AUTH (ExpiresIn {result['ExpiresIn']})")

    user = client.get_user(AccessToken=result["AccessToken"])
    attributes = {attribute["Name"]: attribute.get("Value") for attribute in user["UserAttributes"]}
    expect(attributes.get("email") == email, f"GetUser email is {attributes.get('email')!r}")
    expect(attributes.get("sub") == user_sub, f"GetUser sub is {attributes.get('sub')!r}, expected {user_sub}")
    expect(attributes.get("given_name") == "Sdk", f"GetUser given_name is {attributes.get('given_name')!r}")
    step(f"GetUser (Username {user['Username']})")

    refreshed = client.initiate_auth(
        ClientId=args.client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]},
    )
    refreshed_result = refreshed.get("AuthenticationResult") or {}
    expect("IdToken" in refreshed_result and "AccessToken" in refreshed_result, f"refresh gave no tokens: {refreshed}")
    step("InitiateAuth REFRESH_TOKEN_AUTH")

    claims = verify_rs256(refreshed_result["IdToken"], args.client_id, args.user_pool_id)
    expect(claims.get("email") == email, f"id token email is {claims.get('email')!r}")
    expect(claims.get("sub") == user_sub, f"id token sub is {claims.get('sub')!r}")
    step(f"id token RS256 signature verified with the JWKS of {claims['iss']}")

    try:
        client.initiate_auth(
            ClientId=args.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password + "-wrong"},
        )
    except client.exceptions.NotAuthorizedException as error:
        step(f"wrong password -> NotAuthorizedException ({error.response['Error']['Message']})")
    else:
        raise CheckFailed("a wrong password was accepted")

    client.global_sign_out(AccessToken=refreshed_result["AccessToken"])
    try:
        client.initiate_auth(
            ClientId=args.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]},
        )
    except client.exceptions.NotAuthorizedException:
        step("GlobalSignOut revoked the refresh token")
    else:
        raise CheckFailed("the refresh token still works after GlobalSignOut")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", required=True, help="the user pool API, e.g. http://127.0.0.1:8080/sim/sso")
    parser.add_argument("--client-id", required=True, help="the app client id")
    parser.add_argument("--user-pool-id", required=True, help="e.g. eu-west-1_BoxOffice")
    parser.add_argument("--region", required=True, help="the region boto3 is told")
    parser.add_argument(
        "--control-url",
        help="the simulator's SSO control surface (default: derived from --endpoint-url, "
        "e.g. http://127.0.0.1:8080/sim/control/sso)",
    )
    args = parser.parse_args()
    print(f"cognito-idp SDK check against {args.endpoint_url} (boto3 {boto3.__version__})", flush=True)
    try:
        run(args)
    except CheckFailed as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    except botocore.exceptions.ClientError as error:
        details = error.response.get("Error", {})
        print(
            f"FAIL: {error.operation_name} answered {details.get('Code')}: {details.get('Message')}",
            file=sys.stderr,
        )
        return 1
    except botocore.exceptions.BotoCoreError as error:
        print(f"FAIL: boto3 could not talk to the endpoint: {error}", file=sys.stderr)
        return 1
    print("cognito-idp SDK check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
