{#- The combination of the given columns is unique (dbt_utils' test, without the package:
    nothing may be downloaded at run time). -#}
{% test unique_combination_of_columns(model, columns) %}
select {{ columns | join(', ') }}, count(*) as records
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
