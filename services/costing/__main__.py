from services.costing.main import main

main()
