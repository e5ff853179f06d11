import { test } from "node:test";
import assert from "node:assert/strict";
import { dockerfileBaseImages } from "./warm-command.js";

test("warmer --dockerfile: FROM images with meta ARGs, without scratch and stage references", () => {
  const text = [
    "ARG BASE=debian:12",
    "ARG TAG",
    "FROM ${BASE} AS build",
    "FROM build AS again",
    "FROM scratch",
    "FROM alpine:${TAG}",
    "FROM debian:12",
    "",
  ].join("\n");
  assert.deepEqual(dockerfileBaseImages(text, "Dockerfile", ["TAG=3.20"]), ["debian:12", "alpine:3.20"]);
  assert.deepEqual(dockerfileBaseImages(text, "Dockerfile", ["BASE=busybox", "TAG=edge"]), [
    "busybox",
    "alpine:edge",
    "debian:12",
  ]);
});
