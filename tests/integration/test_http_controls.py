

def test_delay_after_100_continue(srv):
    with HttpConn(srv.addr_of("http")) as h:
        t0 = time.monotonic()
        h.send(request("POST", "/?delay=400", headers=[("Expect", "100-continue"),
                                                        ("Content-Length", "3")]))
        assert h.read_head()[1] == 100
        assert time.monotonic() - t0 < 0.35 or bound(1) > 1
        h.send(b"abc")
        resp = h.read_response()
        assert resp.body == b"abc" and time.monotonic() - t0 >= 0.39


def test_delay_longer_than_read_and_idle_timeouts(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), read_timeout=0.3,
                        idle_timeout=0.3, http_max_delay=2)
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?delay=900"))
        resp = h.read_response()
        assert resp.status == 200


def test_delayed_request_answered_after_half_close(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?delay=300") + request("GET", "/second"))
        h.shutdown_write()
        assert h.read_response().status == 200
        assert h.read_response().body.startswith(b"GET /second ")
        h.expect_close()


def test_status_1xx_is_refused(srv):
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?status=101"))
        check_error(h, 400)


def test_too_many_added_headers(srv):
    q = "&".join(f"header=X-H{i}:" + "v" * 60 for i in range(40))
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?" + q))
        check_error(h, 400, reason="too long")


def test_format_json_of_a_big_head(echod_factory):
    srv = echod_factory(listen=("127.0.0.1", "http://127.0.0.1"), http_max_header_size=65536)
    hdrs = [(f"X-H{i}", "\x01" * 0 + "v" * 200) for i in range(250)]
    with HttpConn(srv.addr_of("http")) as h:
        h.send(request("GET", "/?format=json", headers=hdrs))
        resp = h.read_response()
        if resp.status == 200:
            assert len(json.loads(resp.body)["headers"]) == 251
        else:
            assert resp.status == 431 and resp.get("Connection") == "close"
