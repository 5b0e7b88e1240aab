#!/usr/bin/env node
// Checks the Amazon Appstore simulator's Real-time Notifications with AWS's own SNS message
// validator for Node.js (npm `sns-validator`, pinned in package.json): the signature of the
// SubscriptionConfirmation and of a notification, SignatureVersion 1 (RSA-SHA1) as Amazon's
// notifications carry, and the rejection of a tampered one. It also reads the receipt through
// RVS (production `verifyReceiptId`) and sees Amazon's statuses.
//
// The one thing swapped is the transport of the certificate: sns-validator fetches
// `SigningCertURL` with https.get and accepts only SNS's hosts
// (`sns.<region>.amazonaws.com`), while the simulator serves it over http at its own URL. So
// each message's `SigningCertURL` (which SNS does not sign) is given the shape of SNS's
// (`https://sns.us-east-1.amazonaws.com/SimpleNotificationService-<id>.pem`) and https.get
// fetches that one URL from the simulator. Host checks, the string to sign and the RSA
// verification are sns-validator's own.
//
// Usage: npm ci --prefix xtask/sdk-check && node xtask/sdk-check/amazon_check.js
//          --api-endpoint http://127.0.0.1:8080/sim/amazon [--control-url URL]
// Exit status 0 when every step passed; 1 with a message naming the failed step otherwise.

"use strict";

const http = require("http");
const https = require("https");

const AWS_SHAPED_HOST = "https://sns.us-east-1.amazonaws.com/";

class CheckFailed extends Error {}

function step(message) {
    console.log(`  ok  ${message}`);
}

function expect(condition, message) {
    if (!condition) {
        throw new CheckFailed(message);
    }
}

function argument(name) {
    const index = process.argv.indexOf(name);
    return index >= 0 ? process.argv[index + 1] : undefined;
}

/** A control-surface call: GET without a body, POST (or `method`) with one. */
async function control(url, body, method) {
    const response = await fetch(url, {
        method: method || (body === undefined ? "GET" : "POST"),
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
        throw new CheckFailed(`${url} answered ${response.status}: ${text.slice(0, 300)}`);
    }
    return JSON.parse(text);
}

/** A local endpoint that records the SNS messages POSTed to it. */
function startReceiver() {
    const messages = [];
    const waiting = [];
    const server = http.createServer((request, response) => {
        const chunks = [];
        request.on("data", (chunk) => chunks.push(chunk));
        request.on("end", () => {
            messages.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
            response.writeHead(200);
            response.end();
            waiting.splice(0).forEach((wake) => wake());
        });
    });
    return new Promise((resolve) => {
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address();
            resolve({
                url: `http://127.0.0.1:${port}/rtn`,
                messages,
                async next(count) {
                    const deadline = Date.now() + 10000;
                    while (messages.length < count && Date.now() < deadline) {
                        await new Promise((wake) => {
                            waiting.push(wake);
                            setTimeout(wake, 200);
                        });
                    }
                    expect(messages.length >= count, `the endpoint got ${messages.length} messages, not ${count}`);
                    return messages[count - 1];
                },
                close: () => server.close(),
            });
        });
    });
}

async function main() {
    const apiEndpoint = (argument("--api-endpoint") || "").replace(/\/+$/, "");
    if (!apiEndpoint) {
        console.error("usage: amazon_check.js --api-endpoint http://127.0.0.1:8080/sim/amazon [--control-url URL]");
        process.exit(2);
    }
    const controlUrl = (
        argument("--control-url") ||
        (apiEndpoint.endsWith("/amazon")
            ? `${apiEndpoint.slice(0, -"/amazon".length)}/control/amazon`
            : `${apiEndpoint}/sim/control/amazon`)
    ).replace(/\/+$/, "");

    const app = await control(`${controlUrl}/app`);
    const certificateFile = app.signingCertUrl.slice(app.signingCertUrl.lastIndexOf("/") + 1);
    const awsShapedUrl = `${AWS_SHAPED_HOST}${certificateFile}`;
    // sns-validator fetches the certificate with https.get: that one URL comes from the
    // simulator.
    const httpsGet = https.get;
    https.get = (url, ...rest) =>
        String(url) === awsShapedUrl ? http.get(app.signingCertUrl, ...rest) : httpsGet(url, ...rest);
    const MessageValidator = require("sns-validator");
    const validatorVersion = require("sns-validator/package.json").version;
    const validator = new MessageValidator();
    const validate = (message) =>
        new Promise((resolve, reject) =>
            validator.validate({ ...message, SigningCertURL: awsShapedUrl }, (error, valid) =>
                error ? reject(error) : resolve(valid)
            )
        );
    step(`sns-validator ${validatorVersion}, simulator at ${apiEndpoint}`);

    const before = await control(`${controlUrl}/rtn`);
    const receiver = await startReceiver();
    try {
        await control(`${controlUrl}/rtn`, { endpoint: receiver.url }, "PUT");
        const confirmation = await receiver.next(1);
        const subscribe = JSON.parse(confirmation.body);
        expect(confirmation.headers["x-amz-sns-message-type"] === "SubscriptionConfirmation", "not a SubscriptionConfirmation");
        await validate(subscribe);
        step(`the SubscriptionConfirmation's SignatureVersion ${subscribe.SignatureVersion} signature verifies`);
        const confirmed = await fetch(subscribe.SubscribeURL);
        const answer = await confirmed.text();
        expect(confirmed.ok && answer.includes("<SubscriptionArn>"), `ConfirmSubscription answered ${confirmed.status}: ${answer}`);
        step("a GET of the SubscribeURL confirms the subscription");

        const sku = app.products[0].terms[0].termSku;
        const purchase = await control(`${controlUrl}/purchases`, { sku });
        const delivered = await receiver.next(2);
        const notification = JSON.parse(delivered.body);
        expect(delivered.headers["content-type"].startsWith("text/plain"), "not text/plain");
        await validate(notification);
        const rtn = JSON.parse(notification.Message);
        expect(rtn.notificationType === "SUBSCRIPTION_PURCHASED", `notificationType ${rtn.notificationType}`);
        expect(rtn.receiptId === purchase.receipt.receiptId, "another receipt");
        expect(rtn.appUserId === purchase.userData.userId, "another user");
        expect(rtn.appPackageName === app.appPackageName, "another app");
        step(`the ${rtn.notificationType} notification's signature verifies`);

        const tampered = { ...notification, Message: notification.Message.replace(rtn.receiptId, "forged") };
        let refused = false;
        try {
            await validate(tampered);
        } catch (error) {
            refused = /signature is invalid/.test(String(error.message));
        }
        expect(refused, "a tampered notification verified");
        step("a tampered notification does not verify");

        const rvs = (secret, user, receipt) =>
            fetch(
                `${app.rvsProductionUrl}/version/1.0/verifyReceiptId/developer/${encodeURIComponent(secret)}` +
                    `/user/${encodeURIComponent(user)}/receiptId/${encodeURIComponent(receipt)}`
            );
        const verified = await rvs(app.sharedSecret, rtn.appUserId, rtn.receiptId);
        const receipt = await verified.json();
        expect(verified.status === 200 && receipt.receiptId === rtn.receiptId && receipt.termSku === sku, `RVS: ${JSON.stringify(receipt)}`);
        expect((await rvs("wrong-secret", rtn.appUserId, rtn.receiptId)).status === 496, "a wrong secret is not 496");
        expect((await rvs(app.sharedSecret, "someone-else", rtn.receiptId)).status === 497, "a wrong user is not 497");
        expect((await rvs(app.sharedSecret, rtn.appUserId, "unknown")).status === 400, "an unknown receipt is not 400");
        step("RVS verifies the receipt the notification names, and answers 496, 497 and 400");
    } finally {
        receiver.close();
        const endpoint = before.confirmed ? before.confirmed.endpoint : null;
        await control(`${controlUrl}/rtn`, { endpoint }, "PUT").catch(() => {});
    }
}

main().then(
    () => console.log("Amazon: every step passed"),
    (error) => {
        console.error(`Amazon: FAILED: ${error instanceof CheckFailed ? error.message : error.stack || error}`);
        process.exit(1);
    }
);
