# Sourced by bench/compare.sh and bench/static-idp.sh (not run): nginx
# configurations in the work directory $WORK.
#
# nginx_conf_file NAME RUN CONNECTIONS HTTP: writes $WORK/NAME.conf. RUN is
# its first line, how it runs (`worker_processes 1;`, `master_process off;
# daemon off;`); its pid file is $WORK/NAME.pid, its error log and
# temporary files are under $WORK/NAME, no access log; CONNECTIONS per
# worker; HTTP goes inside `http { }` (upstreams, servers).
nginx_conf_file() {
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1.conf" <<CONF
$2
pid $WORK/$1.pid;
error_log $WORK/$1/error.log;
events { worker_connections $3; }
http {
  access_log off;
  client_body_temp_path $WORK/$1; proxy_temp_path $WORK/$1;
  fastcgi_temp_path $WORK/$1; uwsgi_temp_path $WORK/$1; scgi_temp_path $WORK/$1;
  $4
}
CONF
}
