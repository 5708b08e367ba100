"""What runs beside the load: server and pool monitors, the /live canary, the target."""
