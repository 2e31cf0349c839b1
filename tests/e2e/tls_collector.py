"""A minimal RFC 5425 syslog-over-TLS collector for the export test: accepts TLS
connections, reads octet-counted messages and appends each to OUTPUT, one per line.
Prints "ready" once listening.

usage: tls_collector.py HOST PORT CERT KEY OUTPUT
"""
import socket
import ssl
import sys


def main():
    host, port, cert, key, output = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(4)
    print("ready", flush=True)
    while True:
        raw, _ = server.accept()
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # e.g. a client that does not trust us
            continue
        buffer = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buffer += data
            while b" " in buffer:
                length, rest = buffer.split(b" ", 1)
                if len(rest) < int(length):
                    break
                with open(output, "ab") as f:
                    f.write(rest[:int(length)] + b"\n")
                buffer = rest[int(length):]
        conn.close()


if __name__ == "__main__":
    main()
