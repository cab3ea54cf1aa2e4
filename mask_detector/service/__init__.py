"""The service wing: many cameras, watched and restarted, reported to MQTT, Prometheus and files.

    config.py      the site file: each service, MQTT and camera setting checked against its declaration
    state.py       a camera's reports, the state the supervisor keeps of it, and the state message
    camera.py      one camera's run, in a process of its own or a Ray actor, and the messages it sends
    runners.py     local processes and Ray actors: two ways to run the cameras behind one interface
    supervisor.py  runs the cameras, counts from their messages, writes --events and --stats, publishes
    mqtt.py        one camera's connection to the broker, Home Assistant discovery
    metrics.py     Prometheus /metrics of the supervisor's states

detect_mask_video.py --config site.toml calls supervisor.run_service.
"""
